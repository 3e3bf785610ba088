import Foundation
import Planner

/// The accuracy–latency picture of a package's whole space, from its profiles and accuracy estimator:
/// every combination, the Pareto frontier, and two baselines (the same sparsity in every block; depth only).
public struct ScalingReport: Sendable {
    public struct Point: Sendable, Equatable {
        public var choice: [Int]
        public var latencyMs: Double
        public var accuracy: Double
        public var paramBytes: Int
    }

    public struct Row: Sendable, Equatable {
        /// Fraction of the full model's latency allowed.
        public var budget: Double
        public var elastic: Double?
        public var uniform: Double?
        public var depthOnly: Double?
    }

    public let manifest: PackageManifest
    public let points: [Point]
    public let frontier: [Point]
    public let uniform: [Point]
    public let depthOnly: [Point]
    public let fullLatencyMs: Double

    public init(manifest: PackageManifest) {
        self.manifest = manifest
        let blocks = manifest.blocks
        let fixed = manifest.stem.latencyMs + manifest.head.latencyMs
        let fixedBytes = manifest.stem.paramBytes + manifest.head.paramBytes
        let estimate = manifest.accuracy.estimator()
        func point(_ c: [Int]) -> Point {
            var latency = fixed, bytes = fixedBytes
            for (p, v) in c.enumerated() {
                latency += blocks[p].variants[v].profile?.latencyMs ?? 0
                bytes += blocks[p].variants[v].profile?.paramBytes ?? 0
            }
            // The package's estimate: measured on its frontier, else its estimator's figure (in [0, 1]).
            return Point(choice: c, latencyMs: latency, accuracy: estimate(c), paramBytes: bytes)
        }
        var all: [Point] = []
        all.reserveCapacity(manifest.combinationCount)
        var c = [Int](repeating: 0, count: blocks.count)
        outer: while true {
            all.append(point(c))
            var p = blocks.count - 1
            while p >= 0 {
                c[p] += 1
                if c[p] < blocks[p].variants.count { continue outer }
                c[p] = 0
                p -= 1
            }
            break
        }
        points = all
        frontier = Self.pareto(all)
        fullLatencyMs = point([Int](repeating: 0, count: blocks.count)).latencyMs
        // Uniform width: one sparsity id present at every position.
        let ids = blocks[0].variants.map(\.id).filter { id in id != "skip" && blocks.allSatisfy { $0.variants.contains { $0.id == id } } }
        uniform = ids.map { id in point(blocks.map { b in b.variants.firstIndex { $0.id == id }! }) }
        // Depth only: the original block or skip, per position.
        let skips = blocks.map { b in b.variants.firstIndex { $0.skip != nil } }
        var depth: [Point] = []
        for mask in 0..<(1 << blocks.count) where blocks.count <= 16 {
            var choice: [Int] = []
            var ok = true
            for p in blocks.indices {
                if mask & (1 << p) != 0 { if let s = skips[p] { choice.append(s) } else { ok = false; break } } else { choice.append(0) }
            }
            if ok { depth.append(point(choice)) }
        }
        depthOnly = depth
    }

    /// Points not dominated in (lower latency, higher accuracy), by increasing latency: the planner's staircase, with
    /// the lexicographically first combination kept among equal points.
    static func pareto(_ points: [Point]) -> [Point] {
        paretoStaircase(points, first: \.latencyMs, second: { -$0.accuracy },
                        tieBreak: { $0.choice.lexicographicallyPrecedes($1.choice) })
    }

    public func best(_ set: [Point], within budget: Double) -> Double? {
        set.filter { $0.latencyMs <= budget * fullLatencyMs + 1e-12 }.map(\.accuracy).max()
    }

    public func table(budgets: [Double] = ScalingReport.budgetFractions) -> [Row] {
        budgets.map { Row(budget: $0, elastic: best(points, within: $0), uniform: best(uniform, within: $0), depthOnly: best(depthOnly, within: $0)) }
    }

    public func ids(_ c: [Int]) -> String {
        c.enumerated().map { manifest.blocks[$0.offset].variants[$0.element].id }.joined(separator: "/")
    }

    public var csv: String {
        var s = "variants,latency_ms,estimated_accuracy,param_bytes,pareto,uniform,depth_only\n"
        let f = Set(frontier.map(\.choice)), u = Set(uniform.map(\.choice)), d = Set(depthOnly.map(\.choice))
        for p in points {
            s += "\(ids(p.choice)),\(String(format: "%.5f", p.latencyMs)),\(String(format: "%.5f", p.accuracy)),\(p.paramBytes),"
            s += "\(f.contains(p.choice) ? 1 : 0),\(u.contains(p.choice) ? 1 : 0),\(d.contains(p.choice) ? 1 : 0)\n"
        }
        return s
    }

    /// Chance accuracy of the package's classifier (one class in `classes`).
    public var chanceAccuracy: Double { 1 / Double(max(manifest.architecture.classes, 1)) }

    /// The latency budgets the report's table and plot mark, as fractions of the full model's latency.
    public static let budgetFractions = [0.4, 0.6, 0.8]

    /// The plot's axes: latency from 0 with round ticks; accuracy inside [0, 1], down to chance level at most.
    public var axes: (latency: PlotAxis, accuracy: PlotAxis) {
        let latency = PlotAxis(covering: [0] + points.map(\.latencyMs) + [fullLatencyMs * 1.02], limits: 0...Double.greatestFiniteMagnitude)
        let accuracy = PlotAxis(covering: points.map(\.accuracy) + [chanceAccuracy], limits: 0...1)
        return (latency, accuracy)
    }

    /// `text` as XML character data: a package's name comes from whoever built the package, and the SVG is opened
    /// in browsers, so markup in it must stay text.
    static func xmlEscaped(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// An SVG scatter of the space with the frontier and both baselines, the 40/60/80 % latency budgets and chance
    /// level.
    public var svg: String {
        let w = 720.0, h = 480.0, left = 70.0, right = 20.0, top = 40.0, bottom = 60.0
        let (xAxis, yAxis) = axes
        func X(_ v: Double) -> Double { left + xAxis.fraction(v) * (w - left - right) }
        func Y(_ v: Double) -> Double { h - bottom - yAxis.fraction(v) * (h - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f(w / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">\(Self.xmlEscaped(manifest.name)): \(points.count) combinations, estimated accuracy vs reference latency</text>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(h - bottom))\" x2=\"\(f(w - right))\" y2=\"\(f(h - bottom))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(h - bottom))\" stroke=\"black\"/>\n"
        for xv in xAxis.ticks {
            s += "<text class=\"x-tick\" x=\"\(f(X(xv)))\" y=\"\(f(h - bottom + 18))\" text-anchor=\"middle\">\(xAxis.label(xv))</text>\n"
        }
        for yv in yAxis.ticks {
            s += "<line x1=\"\(f(left))\" y1=\"\(f(Y(yv)))\" x2=\"\(f(w - right))\" y2=\"\(f(Y(yv)))\" stroke=\"#eeeeee\"/>\n"
            s += "<text class=\"y-tick\" x=\"\(f(left - 8))\" y=\"\(f(Y(yv) + 4))\" text-anchor=\"end\">\(yAxis.label(yv))</text>\n"
        }
        for budget in Self.budgetFractions {
            let x = X(budget * fullLatencyMs)
            s += "<line class=\"budget\" x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(h - bottom))\" stroke=\"#888888\" stroke-dasharray=\"4 4\"/>\n"
            s += "<text x=\"\(f(x + 3))\" y=\"\(f(top + 12))\" fill=\"#555555\">\(Int((budget * 100).rounded())) %</text>\n"
        }
        if chanceAccuracy >= yAxis.lower && chanceAccuracy <= yAxis.upper {
            let y = Y(chanceAccuracy)
            s += "<line class=\"chance\" x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(w - right))\" y2=\"\(f(y))\" stroke=\"#d62728\" stroke-dasharray=\"2 3\"/>\n"
            s += "<text x=\"\(f(left + 4))\" y=\"\(f(y - 4))\" fill=\"#d62728\">chance (1 in \(manifest.architecture.classes))</text>\n"
        }
        s += "<text x=\"\(f(w / 2))\" y=\"\(f(h - 15))\" text-anchor=\"middle\">latency at batch 1 on the build machine (ms); dashed: 40 / 60 / 80 % of the full model</text>\n"
        s += "<text transform=\"translate(18 \(f(h / 2))) rotate(-90)\" text-anchor=\"middle\">estimated accuracy</text>\n"
        for p in points { s += "<circle cx=\"\(f(X(p.latencyMs)))\" cy=\"\(f(Y(p.accuracy)))\" r=\"1.5\" fill=\"#bbbbbb\"/>\n" }
        func polyline(_ ps: [Point], _ color: String) -> String {
            let sorted = ps.sorted { $0.latencyMs < $1.latencyMs }
            var out = "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"" + sorted.map { "\(f(X($0.latencyMs))),\(f(Y($0.accuracy)))" }.joined(separator: " ") + "\"/>\n"
            for p in sorted { out += "<circle cx=\"\(f(X(p.latencyMs)))\" cy=\"\(f(Y(p.accuracy)))\" r=\"3.5\" fill=\"\(color)\"/>\n" }
            return out
        }
        s += polyline(frontier, "#1f77b4")
        s += polyline(uniform, "#ff7f0e")
        s += polyline(Self.pareto(depthOnly), "#2ca02c")
        let legend = [("Pareto frontier of the elastic space", "#1f77b4"), ("uniform width (same sparsity everywhere)", "#ff7f0e"),
                      ("depth only (original or skip)", "#2ca02c"), ("every combination", "#bbbbbb")]
        for (i, (label, color)) in legend.enumerated() {
            let y = h - bottom - 70 + Double(i) * 16
            s += "<rect x=\"\(f(w - right - 280))\" y=\"\(f(y - 9))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            s += "<text x=\"\(f(w - right - 265))\" y=\"\(f(y))\">\(label)</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
