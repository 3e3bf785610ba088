import Foundation

/// `POST /v1/releases`: move the devices `selector` matches to `model_id`, in waves like a campaign. Devices outside
/// the selector keep their model.
public struct ReleaseRequest: Codable, Sendable, Equatable {
    public var modelID: UUID
    public var selector: DomainRequest.Selector
    public var rollout: DomainRequest.Rollout?
    public var abort: DomainRequest.Abort?
    /// No job of the release is leased before this time.
    public var startAt: Date?
    /// Each device's job (download and measure the model) must finish within this many seconds (default 900).
    public var timeoutS: Int?
    public var maxAttempts: Int?
    /// Waves are released only inside this daily UTC window (`MaintenanceWindow`).
    public var window: MaintenanceWindow?
    /// The release gate's margin (`max_entropy_rise`) or `enabled: false`; the latency budget is always judged.
    public var gate: QualityGate?

    public init(modelID: UUID, selector: DomainRequest.Selector, rollout: DomainRequest.Rollout? = nil, abort: DomainRequest.Abort? = nil,
                startAt: Date? = nil, timeoutS: Int? = nil, maxAttempts: Int? = nil, window: MaintenanceWindow? = nil, gate: QualityGate? = nil) {
        self.window = window
        self.gate = gate
        self.modelID = modelID
        self.selector = selector
        self.rollout = rollout
        self.abort = abort
        self.startAt = startAt
        self.timeoutS = timeoutS
        self.maxAttempts = maxAttempts
    }

    enum CodingKeys: String, CodingKey {
        case selector, rollout, abort, window, gate
        case modelID = "model_id"
        case startAt = "start_at"
        case timeoutS = "timeout_s"
        case maxAttempts = "max_attempts"
    }

    public static let defaultTimeoutS = 900
    public static let defaultMaxAttempts = 3

    /// The campaign the release runs as: one `profile` job per device for the release's model.
    public func campaignRequest(name: String) -> DomainRequest {
        DomainRequest(name: String(name.prefix(128)), description: "model release", modelID: modelID, selector: selector,
                      rollout: rollout, abort: abort,
                      job: .init(kind: "profile", loss: .noTraining, steps: 0, timeoutS: timeoutS ?? Self.defaultTimeoutS,
                                 maxAttempts: maxAttempts ?? Self.defaultMaxAttempts),
                      gate: gate, startAt: startAt, window: window)
    }

    /// The selector, rollout and abort rules are a campaign's (same fields, same messages).
    public func validate() -> [ValidationIssue] {
        campaignRequest(name: "release").validate().map { issue in
            issue.field.hasPrefix("job.") ? ValidationIssue(field: String(issue.field.dropFirst(4)), message: issue.message) : issue
        }
    }
}

/// A release as `GET /v1/releases/{id}` shows it: its campaign carries status, waves and job counts.
public struct ReleaseView: Codable, Sendable, Equatable {
    public var id: UUID
    public var modelID: UUID
    public var selector: DomainRequest.Selector
    public var startAt: Date?
    public var status: CampaignStatus
    public var campaign: CampaignView
    public var createdAt: Date

    public init(id: UUID, modelID: UUID, selector: DomainRequest.Selector, startAt: Date?, status: CampaignStatus, campaign: CampaignView,
                createdAt: Date) {
        self.id = id
        self.modelID = modelID
        self.selector = selector
        self.startAt = startAt
        self.status = status
        self.campaign = campaign
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, selector, status, campaign
        case modelID = "model_id"
        case startAt = "start_at"
        case createdAt = "created_at"
    }
}

/// The release gate, on a release's `profile` result:
/// - the device's measured latency must be within its latency budget: the latency the result reports for the
///   combination the device would run on the new model, else the fastest combination it can run alone (each
///   block's fastest measured variant); a result that measured neither passes this part;
/// - the new model's mean served entropy on the device's own images (`metrics.entropy_after`, that combination) may
///   exceed what the device served before (`metrics.entropy_before`) by at most `gate.max_entropy_rise` nats. A device
///   that served nothing before has nothing to compare with: latency alone decides. `enabled: false` turns this part
///   off; the latency budget is a constraint, never turned off.
public enum ReleaseGate {
    public static func judge(_ result: JobResult, latencyBudgetMs budget: Double, gate: QualityGate = QualityGate()) -> GateVerdict {
        let measured = result.metrics?.latencyMs
            ?? result.variantLatenciesMs.flatMap { rows in rows.isEmpty ? nil : rows.reduce(0) { $0 + ($1.min() ?? 0) } }
        var reasons: [String] = []
        if let measured, measured > budget {
            reasons.append(String(format: "measured latency %.2f ms is over the device's latency budget of %.2f ms", measured, budget))
        }
        let drop = result.metrics.flatMap { m in m.entropyBefore.flatMap { b in m.entropyAfter.map { b - $0 } } }
        if gate.enabled, let drop, -drop > gate.maxEntropyRise {
            reasons.append(String(format: "the new model's mean served entropy rose by %.4f nats on the device's images, over the gate's max_entropy_rise of %.4f",
                                  -drop, gate.maxEntropyRise))
        }
        var verdict = GateVerdict(passed: reasons.isEmpty, entropyDrop: drop, diversityBefore: nil, diversityAfter: nil, diversityRatio: nil,
                                  reasons: reasons, gate: gate, latencyMs: measured, latencyBudgetMs: budget)
        verdict.criterion = drop == nil ? .latency : .servedEntropy
        return verdict
    }
}

/// `POST /v1/agent/jobs/{id}/plan`: the agent of a release's `profile` job, having measured the new model's
/// variants, asks which combination the coordinator would move it to, so that it measures that combination's
/// served entropy and latency for the gate. Nothing is written.
public struct ReleasePlanRequest: Codable, Sendable, Equatable {
    public var attempt: Int
    public var variantLatenciesMs: [[Double]]

    public init(attempt: Int, variantLatenciesMs: [[Double]]) {
        self.attempt = attempt
        self.variantLatenciesMs = variantLatenciesMs
    }

    enum CodingKeys: String, CodingKey {
        case attempt
        case variantLatenciesMs = "variant_latencies_ms"
    }

    /// The same rules as a `profile` result's latencies.
    public func validate() -> [ValidationIssue] {
        var v = Validator()
        v.number(Double(attempt), "attempt", min: 1, max: 25)
        if variantLatenciesMs.isEmpty { v.fail("variant_latencies_ms", "must list the measured variants of every block position") }
        JobResult.validate(variantLatenciesMs: variantLatenciesMs, into: &v)
        return v.issues
    }
}
