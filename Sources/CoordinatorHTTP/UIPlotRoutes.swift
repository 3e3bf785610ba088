import CoordinatorStore
import ElasticModel
import FleetAPI
import Foundation
import HTTPServer
import Planner

/// The data of a model's accuracy–latency and accuracy–size plots, for the dashboard's models page. The points,
/// the frontier and both baselines are `ScalingReport`'s and the axes are `PlotAxis`'s — the same code that draws
/// `fleetadapt model report`'s SVG — so the page's axes, ticks and labels are the report's; the page only maps
/// them to pixels.
package struct UIPlotRoutes: Sendable {
    package let routes: RouteRegistrar
    package let models: ModelStore

    /// Above this many combinations the report's enumeration is refused (it walks every combination).
    package static let maxCombinations = 50_000

    package func register() {
        routes.add(.GET, "/v1/models/{id}/scaling", access: .viewer, scaling)
    }

    package func scaling(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard let row = try models.find(id) else { throw HTTPError.notFound("No model \(id.uuidString.lowercased()).") }
        guard let manifest = try? WireJSON.decode(PackageManifest.self, from: row.manifestJSON), !manifest.blocks.isEmpty else {
            throw HTTPError.conflict("The model is not an elastic package with blocks; it has no scaling space to plot.", code: "plot_unavailable")
        }
        guard manifest.combinationCount <= Self.maxCombinations else {
            throw HTTPError.conflict("The model has \(manifest.combinationCount) combinations; the plot covers at most \(Self.maxCombinations) (use `fleetadapt model report` on the package).",
                                     code: "plot_unavailable")
        }
        return try .body(ScalingPlot(modelID: row.id, report: ScalingReport(manifest: manifest)))
    }
}

/// `GET /v1/models/{id}/scaling`.
struct ScalingPlot: Encodable {
    struct Axis: Encodable {
        struct Tick: Encodable {
            var value: Double
            var label: String
        }

        var lower: Double
        var upper: Double
        var step: Double
        var ticks: [Tick]

        init(_ axis: PlotAxis) {
            lower = axis.lower
            upper = axis.upper
            step = axis.step
            ticks = axis.ticks.map { Tick(value: $0, label: axis.label($0)) }
        }
    }

    struct Point: Encodable {
        var variants: String
        var latencyMs: Double
        var accuracy: Double
        var sizeMB: Double

        enum CodingKeys: String, CodingKey {
            case variants, accuracy
            case latencyMs = "latency_ms"
            case sizeMB = "size_mb"
        }
    }

    struct Axes: Encodable {
        var latencyMs: Axis
        var sizeMB: Axis
        var accuracy: Axis

        enum CodingKeys: String, CodingKey {
            case accuracy
            case latencyMs = "latency_ms"
            case sizeMB = "size_mb"
        }
    }

    var modelID: UUID
    var name: String
    var combinations: Int
    var fullLatencyMs: Double
    var chanceAccuracy: Double
    var budgetFractions: [Double]
    var axes: Axes
    var points: [Point]
    /// Not dominated in (lower latency, higher accuracy), by increasing latency: the report's frontier.
    var frontier: [Point]
    /// Not dominated in (smaller size, higher accuracy), by increasing size.
    var sizeFrontier: [Point]
    var uniform: [Point]
    /// The depth-only baseline's frontier (the original block or skip per position), by increasing latency.
    var depthOnly: [Point]

    init(modelID: UUID, report: ScalingReport) {
        func point(_ p: ScalingReport.Point) -> Point {
            Point(variants: report.ids(p.choice), latencyMs: p.latencyMs, accuracy: p.accuracy, sizeMB: Double(p.paramBytes) / 1e6)
        }
        self.modelID = modelID
        name = report.manifest.name
        combinations = report.points.count
        fullLatencyMs = report.fullLatencyMs
        chanceAccuracy = report.chanceAccuracy
        budgetFractions = ScalingReport.budgetFractions
        let (latency, accuracy) = report.axes
        let size = PlotAxis(covering: [0] + report.points.map { Double($0.paramBytes) / 1e6 }, limits: 0...Double.greatestFiniteMagnitude)
        axes = Axes(latencyMs: Axis(latency), sizeMB: Axis(size), accuracy: Axis(accuracy))
        points = report.points.map(point)
        frontier = report.frontier.map(point)
        sizeFrontier = paretoStaircase(report.points, first: \.paramBytes, second: { -$0.accuracy },
                                       tieBreak: { $0.choice.lexicographicallyPrecedes($1.choice) }).map(point)
        uniform = report.uniform.sorted { $0.latencyMs < $1.latencyMs }.map(point)
        // The report draws the depth-only baseline as its own staircase; so does the page.
        depthOnly = paretoStaircase(report.depthOnly, first: \.latencyMs, second: { -$0.accuracy },
                                    tieBreak: { $0.choice.lexicographicallyPrecedes($1.choice) }).map(point)
    }

    enum CodingKeys: String, CodingKey {
        case name, combinations, axes, points, frontier, uniform
        case modelID = "model_id"
        case fullLatencyMs = "full_latency_ms"
        case chanceAccuracy = "chance_accuracy"
        case budgetFractions = "budget_fractions"
        case sizeFrontier = "size_frontier"
        case depthOnly = "depth_only"
    }
}
