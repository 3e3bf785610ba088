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

    public init(modelID: UUID, selector: DomainRequest.Selector, rollout: DomainRequest.Rollout? = nil, abort: DomainRequest.Abort? = nil,
                startAt: Date? = nil, timeoutS: Int? = nil, maxAttempts: Int? = nil) {
        self.modelID = modelID
        self.selector = selector
        self.rollout = rollout
        self.abort = abort
        self.startAt = startAt
        self.timeoutS = timeoutS
        self.maxAttempts = maxAttempts
    }

    enum CodingKeys: String, CodingKey {
        case selector, rollout, abort
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
                                 maxAttempts: maxAttempts ?? Self.defaultMaxAttempts))
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
