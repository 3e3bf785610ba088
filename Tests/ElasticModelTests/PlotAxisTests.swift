import Foundation
import Testing
@testable import ElasticModel

/// The report's axes: round ticks, accuracies inside [0, 1], budget lines and chance level.
struct PlotAxisTests {
    /// The failure users saw: an unclamped estimate ran the accuracy axis to −0.75 with ticks like 0.828 / 0.512.
    @Test func anAccuracyAxisStaysInsideZeroToOneWithRoundTicks() {
        let axis = PlotAxis(covering: [-0.75, 0.512, 0.828], limits: 0...1)
        #expect(axis.lower == 0)
        #expect(axis.upper <= 1)
        #expect(axis.ticks.map(axis.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let narrow = PlotAxis(covering: [0.512, 0.828], limits: 0...1)
        #expect(narrow.ticks.map(narrow.label) == ["0.5", "0.6", "0.7", "0.8", "0.9"])
        let quarter = PlotAxis(covering: [0, 1.1], limits: 0...1, targetTicks: 4)
        #expect(quarter.ticks.map(quarter.label) == ["0.00", "0.25", "0.50", "0.75", "1.00"])
    }

    /// Against brute force over random ranges: every value is shown, every tick is a whole multiple of a step of
    /// 1, 2, 2.5 or 5 × 10ⁿ, and there are neither too few nor too many.
    @Test func randomRangesGetRoundStepsThatCoverThem() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let scale = pow(10, Double.random(in: -3...4, using: &rng))
            let values = (0..<Int.random(in: 1...20, using: &rng)).map { _ in Double.random(in: -1...1, using: &rng) * scale }
            let axis = PlotAxis(covering: values)
            #expect(values.allSatisfy { $0 >= axis.lower - 1e-9 * scale && $0 <= axis.upper + 1e-9 * scale })
            let mantissa = axis.step / pow(10, log10(axis.step).rounded(.down))
            #expect([1, 2, 2.5, 5, 10].contains { abs(mantissa - $0) < 1e-6 }, "step \(axis.step)")
            #expect((2...12).contains(axis.ticks.count), "\(axis.ticks.count) ticks for \(values)")
            for t in axis.ticks { #expect(abs((t / axis.step).rounded() - t / axis.step) < 1e-6) }
        }
    }

    @Test func theReportPlotsBudgetsAndChanceInsideTheUnitInterval() throws {
        let report = ScalingReport(manifest: Fixture.built.package.manifest)
        #expect(report.points.allSatisfy { (0...1).contains($0.accuracy) })
        let svg = report.svg
        let labels = svg.components(separatedBy: "class=\"y-tick\"").dropFirst().compactMap { part -> Double? in
            guard let open = part.firstIndex(of: ">"), let close = part.firstIndex(of: "<") else { return nil }
            return Double(part[part.index(after: open)..<close])
        }
        #expect(!labels.isEmpty && labels.allSatisfy { (0...1).contains($0) }, "\(labels)")
        #expect(svg.components(separatedBy: "class=\"budget\"").count - 1 == 3)
        #expect(svg.contains("class=\"chance\""))
        #expect(svg.contains("chance (1 in 10)"))
    }

    /// A package's name is the builder's text: markup in it stays text in the SVG (which browsers open).
    @Test func theReportEscapesThePackageNameInItsSVG() {
        var manifest = Fixture.built.package.manifest
        manifest.name = "cam</text><script>alert(1)</script>&\"'"
        let svg = ScalingReport(manifest: manifest).svg
        #expect(!svg.contains("<script"))
        #expect(svg.contains("cam&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&apos;: "))
        #expect(svg.components(separatedBy: "<text").count == svg.components(separatedBy: "</text>").count)
    }
}
