import Foundation

/// What an `adapt` result must show before its adapters are run or aggregated.
///
/// When the device's data has labels, the agent holds out a fixed part of it from training (`HeldOutSplit` on the
/// agent) and reports accuracy on that part before and after: then accuracy decides — it must not drop by more
/// than `max_accuracy_drop` plus one standard error of the before-accuracy on that many images (√(p(1−p)/n), so a
/// small held-out part does not reject sound adaptations by chance). Without labels the device's unsupervised
/// quality decides: mean per-sample entropy on its data dropped by at least `min_entropy_drop` nats. In both cases
/// prediction diversity (the entropy of the batch-mean prediction) must keep at least `min_diversity_ratio` of its
/// value before: entropy alone rewards TENT's collapse (every image confidently one class). A `min_entropy_drop`
/// the operator set is judged even when accuracy decides. A measurement the result does not carry is not judged.
/// `enabled: false` accepts every result, as before gates existed.
///
/// A release's gate (`ReleaseGate`) judges `max_entropy_rise` instead: the new model's mean served entropy on the
/// device's own images may exceed what the device served before by at most that many nats.
public struct QualityGate: Codable, Sendable, Equatable {
    public var enabled: Bool
    /// Set by the operator; nil: `defaultMinEntropyDrop`, applied only when held-out accuracy does not decide.
    public var minEntropyDrop: Double?
    public var minDiversityRatio: Double
    /// The held-out accuracy may fall by at most this (a fraction, 0.01 = one point) plus one standard error.
    public var maxAccuracyDrop: Double
    /// Releases: the mean served entropy may rise by at most this (nats) from the model the device ran before.
    public var maxEntropyRise: Double

    public static let defaultMinEntropyDrop = 0.001
    public static let defaultMaxEntropyRise = 0.1
    public static let defaultMinDiversityRatio = 0.5
    public static let defaultMaxAccuracyDrop = 0.01

    public init(enabled: Bool = true, minEntropyDrop: Double? = nil,
                minDiversityRatio: Double = QualityGate.defaultMinDiversityRatio,
                maxAccuracyDrop: Double = QualityGate.defaultMaxAccuracyDrop, maxEntropyRise: Double = QualityGate.defaultMaxEntropyRise) {
        self.enabled = enabled
        self.maxEntropyRise = maxEntropyRise
        self.minEntropyDrop = minEntropyDrop
        self.minDiversityRatio = minDiversityRatio
        self.maxAccuracyDrop = maxAccuracyDrop
    }

    /// Absent fields take their defaults, so `{"min_entropy_drop": 0.05}` is a whole gate.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        minEntropyDrop = try c.decodeIfPresent(Double.self, forKey: .minEntropyDrop)
        minDiversityRatio = try c.decodeIfPresent(Double.self, forKey: .minDiversityRatio) ?? Self.defaultMinDiversityRatio
        maxAccuracyDrop = try c.decodeIfPresent(Double.self, forKey: .maxAccuracyDrop) ?? Self.defaultMaxAccuracyDrop
        maxEntropyRise = try c.decodeIfPresent(Double.self, forKey: .maxEntropyRise) ?? Self.defaultMaxEntropyRise
    }

    enum CodingKeys: String, CodingKey {
        case enabled
        case minEntropyDrop = "min_entropy_drop"
        case minDiversityRatio = "min_diversity_ratio"
        case maxAccuracyDrop = "max_accuracy_drop"
        case maxEntropyRise = "max_entropy_rise"
    }

    /// The accuracy drop a held-out part of `samples` images at accuracy `before` may show: the gate's margin plus
    /// one standard error of `before`.
    public func accuracyAllowance(before: Double, samples: Int) -> Double {
        let p = min(1, max(0, before))
        return maxAccuracyDrop + (samples > 0 ? (p * (1 - p) / Double(samples)).squareRoot() : 0)
    }

    /// The gate's verdict on a result's metrics.
    public func judge(_ metrics: JobMetrics?) -> GateVerdict {
        var reasons: [String] = []
        let drop = metrics.flatMap { m in m.entropyBefore.flatMap { b in m.entropyAfter.map { b - $0 } } }
        let ratio = metrics.flatMap { m in m.diversityBefore.flatMap { b in m.diversityAfter.map { b > 0 ? $0 / b : 1 } } }
        var accuracyDrop: Double?, allowance: Double?
        if let m = metrics, let before = m.heldoutAccuracyBefore, let after = m.heldoutAccuracyAfter, let n = m.heldoutSamples, n > 0 {
            accuracyDrop = before - after
            allowance = accuracyAllowance(before: before, samples: n)
        }
        let criterion: GateVerdict.Criterion = accuracyDrop == nil ? .entropy : .heldoutAccuracy
        if enabled {
            if let accuracyDrop, let allowance, accuracyDrop > allowance {
                reasons.append(String(format: "held-out accuracy dropped by %.4f on %d images, over the gate's allowance of %.4f (max_accuracy_drop %.4f plus one standard error)",
                                      accuracyDrop, metrics?.heldoutSamples ?? 0, allowance, maxAccuracyDrop))
            }
            let entropyMargin = criterion == .entropy ? (minEntropyDrop ?? Self.defaultMinEntropyDrop) : minEntropyDrop
            if let drop, let entropyMargin, drop < entropyMargin {
                reasons.append(String(format: "mean entropy dropped by %.4f nats, under the gate's %.4f", drop, entropyMargin))
            }
            if let ratio, ratio < minDiversityRatio {
                reasons.append(String(format: "prediction diversity fell to %.3f of its value before, under the gate's %.3f (a collapse)", ratio, minDiversityRatio))
            }
        }
        var verdict = GateVerdict(passed: reasons.isEmpty, entropyDrop: drop, diversityBefore: metrics?.diversityBefore,
                                  diversityAfter: metrics?.diversityAfter, diversityRatio: ratio, reasons: reasons, gate: self)
        verdict.criterion = criterion
        verdict.heldoutAccuracyBefore = metrics?.heldoutAccuracyBefore
        verdict.heldoutAccuracyAfter = metrics?.heldoutAccuracyAfter
        verdict.heldoutSamples = metrics?.heldoutSamples
        verdict.accuracyDrop = accuracyDrop
        verdict.accuracyAllowance = allowance
        return verdict
    }
}

/// A gate's measurements of one result and why it failed, if it did (stored with the job).
public struct GateVerdict: Codable, Sendable, Equatable {
    /// What decided an adapt result: accuracy on the device's held-out labelled part, or (no labels) entropy; for a
    /// release, the served entropy of the new model against the one before (`served_entropy`) or, when the device
    /// served nothing before, its latency alone (`latency`).
    public enum Criterion: String, Codable, Sendable {
        case heldoutAccuracy = "heldout_accuracy", entropy
        case servedEntropy = "served_entropy", latency
    }

    public var passed: Bool
    public var entropyDrop: Double?
    public var diversityBefore: Double?
    public var diversityAfter: Double?
    public var diversityRatio: Double?
    public var reasons: [String]
    public var gate: QualityGate
    /// The release gate's measurement: the device's latency and its budget (release `profile` jobs).
    public var latencyMs: Double?
    public var latencyBudgetMs: Double?
    public var criterion: Criterion?
    public var heldoutAccuracyBefore: Double?
    public var heldoutAccuracyAfter: Double?
    public var heldoutSamples: Int?
    public var accuracyDrop: Double?
    /// `max_accuracy_drop` plus one standard error: the largest held-out drop that passes.
    public var accuracyAllowance: Double?

    public init(passed: Bool, entropyDrop: Double?, diversityBefore: Double?, diversityAfter: Double?, diversityRatio: Double?,
                reasons: [String], gate: QualityGate, latencyMs: Double? = nil, latencyBudgetMs: Double? = nil) {
        self.latencyMs = latencyMs
        self.latencyBudgetMs = latencyBudgetMs
        self.passed = passed
        self.entropyDrop = entropyDrop
        self.diversityBefore = diversityBefore
        self.diversityAfter = diversityAfter
        self.diversityRatio = diversityRatio
        self.reasons = reasons
        self.gate = gate
    }

    enum CodingKeys: String, CodingKey {
        case passed, reasons, gate, criterion
        case entropyDrop = "entropy_drop"
        case diversityBefore = "diversity_before"
        case diversityAfter = "diversity_after"
        case diversityRatio = "diversity_ratio"
        case latencyMs = "latency_ms"
        case latencyBudgetMs = "latency_budget_ms"
        case heldoutAccuracyBefore = "heldout_accuracy_before"
        case heldoutAccuracyAfter = "heldout_accuracy_after"
        case heldoutSamples = "heldout_samples"
        case accuracyDrop = "accuracy_drop"
        case accuracyAllowance = "accuracy_allowance"
    }
}

/// One job of a campaign as `GET /v1/campaigns/{id}/jobs` shows it to the operator.
public struct CampaignJobView: Codable, Sendable, Equatable {
    public var id: UUID
    public var deviceID: UUID
    public var kind: JobKind
    public var wave: Int
    public var state: JobState
    public var attempt: Int
    /// The device's reported outcome (`succeeded`/`failed`), with its error and metrics, once it reported.
    public var outcome: String?
    public var error: String?
    public var metrics: JobMetrics?
    /// The quality gate's measurements and verdict (adapt jobs).
    public var gate: GateVerdict?
    public var updatedAt: Date
    public var finishedAt: Date?

    public init(id: UUID, deviceID: UUID, kind: JobKind, wave: Int, state: JobState, attempt: Int, outcome: String?, error: String?,
                metrics: JobMetrics?, gate: GateVerdict?, updatedAt: Date, finishedAt: Date?) {
        self.id = id
        self.deviceID = deviceID
        self.kind = kind
        self.wave = wave
        self.state = state
        self.attempt = attempt
        self.outcome = outcome
        self.error = error
        self.metrics = metrics
        self.gate = gate
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, wave, state, attempt, outcome, error, metrics, gate
        case deviceID = "device_id"
        case updatedAt = "updated_at"
        case finishedAt = "finished_at"
    }
}
