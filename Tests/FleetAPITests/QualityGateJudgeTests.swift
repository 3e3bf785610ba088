import FleetAPI
import Foundation
import Testing

/// `QualityGate.judge` without a coordinator: held-out accuracy decides when the result carries it (with one
/// standard error of slack), entropy decides otherwise, the collapse check always applies, and bad gate values and
/// inconsistent held-out metrics are named.
@Suite struct QualityGateJudgeTests {
    func metrics(heldout: (Double, Double, Int)? = nil, entropy: (Double, Double) = (1.0, 0.9),
                 diversity: (Double, Double) = (2.0, 1.9)) -> JobMetrics {
        JobMetrics(entropyBefore: entropy.0, entropyAfter: entropy.1, samples: 300, diversityBefore: diversity.0,
                   diversityAfter: diversity.1, heldoutAccuracyBefore: heldout?.0, heldoutAccuracyAfter: heldout?.1,
                   heldoutSamples: heldout?.2)
    }

    @Test func theAllowanceIsTheMarginPlusOneStandardError() {
        let gate = QualityGate()
        // p = 0.5 on 100 images: √(0.25/100) = 0.05, plus 0.01.
        #expect(abs(gate.accuracyAllowance(before: 0.5, samples: 100) - 0.06) < 1e-12)
        #expect(abs(gate.accuracyAllowance(before: 1, samples: 100) - 0.01) < 1e-12, "no sampling slack at p = 1")
        #expect(abs(QualityGate(maxAccuracyDrop: 0).accuracyAllowance(before: 0.9, samples: 400) - 0.015) < 1e-12)
    }

    @Test func heldOutAccuracyDecidesWhenPresent() {
        let gate = QualityGate()
        // Entropy rose (would fail the entropy rule), but held-out accuracy rose: accuracy decides, it passes.
        let better = gate.judge(metrics(heldout: (0.60, 0.70, 75), entropy: (1.0, 1.2)))
        #expect(better.passed, "\(better.reasons)")
        #expect(better.criterion == .heldoutAccuracy)
        #expect(abs((better.accuracyDrop ?? 0) + 0.10) < 1e-12)
        // A drop inside the allowance (0.01 + √(0.24/75) ≈ 0.0666) passes; one beyond it is rejected, naming accuracy.
        #expect(gate.judge(metrics(heldout: (0.60, 0.55, 75))).passed)
        let worse = gate.judge(metrics(heldout: (0.60, 0.52, 75)))
        #expect(!worse.passed)
        #expect(worse.reasons.count == 1 && worse.reasons[0].contains("held-out accuracy"), "\(worse.reasons)")
        #expect(abs((worse.accuracyAllowance ?? 0) - (0.01 + (0.24 / 75.0).squareRoot())) < 1e-12)
    }

    @Test func entropyDecidesWithoutLabels() {
        let gate = QualityGate()
        let verdict = gate.judge(metrics(entropy: (1.0, 1.2)))
        #expect(!verdict.passed && verdict.criterion == .entropy)
        #expect(verdict.reasons.first?.contains("entropy") == true)
        #expect(gate.judge(metrics(entropy: (1.0, 0.5))).passed)
    }

    @Test func anExplicitEntropyMarginAndTheCollapseCheckStillApply() {
        let strict = QualityGate(minEntropyDrop: 50)
        let verdict = strict.judge(metrics(heldout: (0.6, 0.7, 75)))
        #expect(!verdict.passed && verdict.reasons.count == 1 && verdict.reasons[0].contains("entropy"), "\(verdict.reasons)")
        let collapsed = QualityGate().judge(metrics(heldout: (0.6, 0.62, 75), diversity: (2.0, 0.1)))
        #expect(!collapsed.passed && collapsed.reasons.contains { $0.contains("collapse") })
        #expect(QualityGate(enabled: false).judge(metrics(heldout: (0.9, 0.1, 75))).passed)
    }

    @Test func gateAndMetricsRoundTripWithTheirWireNames() throws {
        let gate = try JSONDecoder().decode(QualityGate.self, from: Data(#"{"max_accuracy_drop": 0.02}"#.utf8))
        #expect(gate.maxAccuracyDrop == 0.02 && gate.minEntropyDrop == nil && gate.enabled)
        let verdict = gate.judge(metrics(heldout: (0.5, 0.5, 40)))
        let text = String(decoding: try JSONEncoder().encode(verdict), as: UTF8.self)
        #expect(text.contains(#""criterion":"heldout_accuracy""#) && text.contains(#""heldout_samples":40"#), "\(text)")
        #expect(try JSONDecoder().decode(GateVerdict.self, from: Data(text.utf8)) == verdict)
    }

    @Test func badGateValuesAreNamed() {
        func fields(_ gate: QualityGate) -> [String] {
            var r = DomainRequestTests.request()
            r.gate = gate
            return r.validate().map(\.field)
        }
        #expect(fields(QualityGate()).isEmpty)
        #expect(fields(QualityGate(maxAccuracyDrop: -0.1)) == ["gate.max_accuracy_drop"])
        #expect(fields(QualityGate(maxAccuracyDrop: 1.5)) == ["gate.max_accuracy_drop"])
        #expect(fields(QualityGate(maxAccuracyDrop: .nan)) == ["gate.max_accuracy_drop"])
        #expect(fields(QualityGate(minEntropyDrop: .infinity)) == ["gate.min_entropy_drop"])
    }

    @Test func inconsistentHeldOutMetricsAreNamed() {
        func fields(_ m: JobMetrics) -> [String] { JobResult(attempt: 1, outcome: .succeeded, metrics: m).validate().map(\.field) }
        #expect(fields(metrics(heldout: (0.5, 0.6, 75))).isEmpty)
        #expect(fields(metrics(heldout: (0.5, 0.6, 301))) == ["metrics.heldout_samples"], "more held out than the device has")
        #expect(fields(metrics(heldout: (0.5, 0.6, 0))) == ["metrics.heldout_samples"])
        #expect(fields(metrics(heldout: (1.5, 0.6, 75))) == ["metrics.heldout_accuracy_before"])
        var partial = metrics()
        partial.heldoutAccuracyBefore = 0.5
        #expect(fields(partial) == ["metrics.heldout_samples"], "the three come together")
    }
}
