import Foundation

/// What an `adapt` result must show before its adapters are run or aggregated: the device's mean per-sample
/// entropy on its data dropped by at least `min_entropy_drop` nats, and its prediction diversity (the entropy of
/// the batch-mean prediction) kept at least `min_diversity_ratio` of what it was before. Entropy alone rewards
/// TENT's collapse (every image confidently one class); diversity catches it. A measurement the result does not
/// carry is not judged. `enabled: false` accepts every result, as before gates existed.
public struct QualityGate: Codable, Sendable, Equatable {
    public var enabled: Bool
    public var minEntropyDrop: Double
    public var minDiversityRatio: Double

    public static let defaultMinEntropyDrop = 0.001
    public static let defaultMinDiversityRatio = 0.5

    public init(enabled: Bool = true, minEntropyDrop: Double = QualityGate.defaultMinEntropyDrop,
                minDiversityRatio: Double = QualityGate.defaultMinDiversityRatio) {
        self.enabled = enabled
        self.minEntropyDrop = minEntropyDrop
        self.minDiversityRatio = minDiversityRatio
    }

    /// Absent fields take their defaults, so `{"min_entropy_drop": 0.05}` is a whole gate.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        minEntropyDrop = try c.decodeIfPresent(Double.self, forKey: .minEntropyDrop) ?? Self.defaultMinEntropyDrop
        minDiversityRatio = try c.decodeIfPresent(Double.self, forKey: .minDiversityRatio) ?? Self.defaultMinDiversityRatio
    }

    enum CodingKeys: String, CodingKey {
        case enabled
        case minEntropyDrop = "min_entropy_drop"
        case minDiversityRatio = "min_diversity_ratio"
    }

    /// The gate's verdict on a result's metrics.
    public func judge(_ metrics: JobMetrics?) -> GateVerdict {
        var reasons: [String] = []
        let drop = metrics.flatMap { m in m.entropyBefore.flatMap { b in m.entropyAfter.map { b - $0 } } }
        let ratio = metrics.flatMap { m in m.diversityBefore.flatMap { b in m.diversityAfter.map { b > 0 ? $0 / b : 1 } } }
        if enabled {
            if let drop, drop < minEntropyDrop {
                reasons.append(String(format: "mean entropy dropped by %.4f nats, under the gate's %.4f", drop, minEntropyDrop))
            }
            if let ratio, ratio < minDiversityRatio {
                reasons.append(String(format: "prediction diversity fell to %.3f of its value before, under the gate's %.3f (a collapse)", ratio, minDiversityRatio))
            }
        }
        return GateVerdict(passed: reasons.isEmpty, entropyDrop: drop, diversityBefore: metrics?.diversityBefore,
                           diversityAfter: metrics?.diversityAfter, diversityRatio: ratio, reasons: reasons, gate: self)
    }
}

/// A gate's measurements of one result and why it failed, if it did (stored with the job).
public struct GateVerdict: Codable, Sendable, Equatable {
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
        case passed, reasons, gate
        case entropyDrop = "entropy_drop"
        case diversityBefore = "diversity_before"
        case diversityAfter = "diversity_after"
        case diversityRatio = "diversity_ratio"
        case latencyMs = "latency_ms"
        case latencyBudgetMs = "latency_budget_ms"
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
