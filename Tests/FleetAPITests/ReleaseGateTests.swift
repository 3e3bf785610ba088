import FleetAPI
import Foundation
import Testing

/// `ReleaseGate.judge` without a coordinator: the latency budget always applies (to the combination the device
/// measured, else its fastest one), the served-entropy rise is judged against `max_entropy_rise` when the device
/// served something before, and the release's gate values and plan figures are validated by field.
@Suite struct ReleaseGateTests {
    func result(latency: Double? = 4, entropy: (Double?, Double?) = (0.8, 0.85), variants: [[Double]] = [[1, 0.5], [2, 1]]) -> JobResult {
        JobResult(attempt: 1, outcome: .succeeded, metrics: JobMetrics(entropyBefore: entropy.0, entropyAfter: entropy.1, samples: 200, latencyMs: latency),
                  variantLatenciesMs: variants)
    }

    @Test func aSmallRiseWithinTheBudgetPasses() {
        let v = ReleaseGate.judge(result(), latencyBudgetMs: 5)
        #expect(v.passed, "\(v.reasons)")
        #expect(v.criterion == .servedEntropy)
        #expect(abs((v.entropyDrop ?? 0) + 0.05) < 1e-12, "drop is before − after: a rise is negative")
        #expect(v.latencyMs == 4 && v.latencyBudgetMs == 5)
    }

    @Test func aRiseOverTheMarginIsRejectedNamingServedEntropy() {
        let v = ReleaseGate.judge(result(entropy: (0.8, 1.2)), latencyBudgetMs: 5)
        #expect(!v.passed)
        #expect(v.reasons.count == 1 && v.reasons[0].contains("served entropy rose by 0.4000"), "\(v.reasons)")
        // The operator's margin decides; a drop of entropy always passes this part.
        #expect(ReleaseGate.judge(result(entropy: (0.8, 1.2)), latencyBudgetMs: 5, gate: QualityGate(maxEntropyRise: 0.5)).passed)
        #expect(ReleaseGate.judge(result(entropy: (0.8, 0.1)), latencyBudgetMs: 5, gate: QualityGate(maxEntropyRise: 0)).passed)
        // Exactly at the margin passes.
        #expect(ReleaseGate.judge(result(entropy: (0.5, 0.75)), latencyBudgetMs: 5, gate: QualityGate(maxEntropyRise: 0.25)).passed)
    }

    @Test func disablingTheGateKeepsTheLatencyBudget() {
        let off = QualityGate(enabled: false)
        #expect(ReleaseGate.judge(result(entropy: (0.2, 2.3)), latencyBudgetMs: 5, gate: off).passed)
        let slow = ReleaseGate.judge(result(latency: 6, entropy: (0.2, 2.3)), latencyBudgetMs: 5, gate: off)
        #expect(!slow.passed && slow.reasons.count == 1 && slow.reasons[0].contains("over the device's latency budget"), "\(slow.reasons)")
    }

    @Test func withoutABeforeLatencyAloneDecides() {
        let first = ReleaseGate.judge(result(entropy: (nil, 2.3)), latencyBudgetMs: 5)
        #expect(first.passed && first.criterion == .latency && first.entropyDrop == nil)
        // No combination measured: the fastest one the variants allow (0.5 + 1 ms) is judged.
        let fastest = ReleaseGate.judge(result(latency: nil, entropy: (nil, nil)), latencyBudgetMs: 1.2)
        #expect(!fastest.passed && fastest.latencyMs == 1.5)
    }

    @Test func badGateValuesAndPlanFiguresAreNamed() {
        func fields(_ gate: QualityGate) -> [String] {
            ReleaseRequest(modelID: UUID(), selector: .init(labels: ["a": "b"]), gate: gate).validate().map(\.field)
        }
        #expect(fields(QualityGate(maxEntropyRise: 0.2)).isEmpty)
        #expect(fields(QualityGate(maxEntropyRise: -0.1)) == ["gate.max_entropy_rise"])
        #expect(fields(QualityGate(maxEntropyRise: .nan)) == ["gate.max_entropy_rise"])
        #expect(fields(QualityGate(maxEntropyRise: 1000)) == ["gate.max_entropy_rise"])
        let decoded = try? WireJSON.decode(QualityGate.self, from: #"{"max_entropy_rise": 0.3}"#)
        #expect(decoded == QualityGate(maxEntropyRise: 0.3), "absent fields take their defaults")

        func plan(_ lat: [[Double]], attempt: Int = 1) -> [String] { ReleasePlanRequest(attempt: attempt, variantLatenciesMs: lat).validate().map(\.field) }
        #expect(plan([[1, 2], [3]]).isEmpty)
        #expect(plan([]) == ["variant_latencies_ms"])
        #expect(plan([[1], []]) == ["variant_latencies_ms.1"])
        #expect(plan([[1, -2]]) == ["variant_latencies_ms.0.1"])
        #expect(plan([[1, .infinity]]) == ["variant_latencies_ms.0.1"])
        #expect(plan([[1]], attempt: 0) == ["attempt"])
        #expect(plan(Array(repeating: [1], count: 257)) == ["variant_latencies_ms"])
    }
}
