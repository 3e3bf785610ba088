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

    public init(modelID: UUID, selector: DomainRequest.Selector, rollout: DomainRequest.Rollout? = nil, abort: DomainRequest.Abort? = nil,
                startAt: Date? = nil, timeoutS: Int? = nil, maxAttempts: Int? = nil, window: MaintenanceWindow? = nil) {
        self.window = window
        self.modelID = modelID
        self.selector = selector
        self.rollout = rollout
        self.abort = abort
        self.startAt = startAt
        self.timeoutS = timeoutS
        self.maxAttempts = maxAttempts
    }

    enum CodingKeys: String, CodingKey {
        case selector, rollout, abort, window
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
                      startAt: startAt, window: window)
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

/// The release gate: a release's `profile` result passes when the device's measured latency is within its latency
/// budget. The latency judged is the one the result reports for the planned combination, else the fastest
/// combination the device can run alone (each block's fastest measured variant). A result that measured neither
/// passes (nothing to judge).
public enum ReleaseGate {
    public static func judge(_ result: JobResult, latencyBudgetMs budget: Double) -> GateVerdict {
        let measured = result.metrics?.latencyMs
            ?? result.variantLatenciesMs.flatMap { rows in rows.isEmpty ? nil : rows.reduce(0) { $0 + ($1.min() ?? 0) } }
        var reasons: [String] = []
        if let measured, measured > budget {
            reasons.append(String(format: "measured latency %.2f ms is over the device's latency budget of %.2f ms", measured, budget))
        }
        return GateVerdict(passed: reasons.isEmpty, entropyDrop: nil, diversityBefore: nil, diversityAfter: nil, diversityRatio: nil,
                           reasons: reasons, gate: QualityGate(), latencyMs: measured, latencyBudgetMs: budget)
    }
}
