import Foundation

public enum CampaignStatus: String, Codable, Sendable, CaseIterable {
    case running, paused, completed, aborted, canceled
    /// A rollback is giving the devices the campaign changed their previous configs back.
    case rollingBack = "rolling_back"
    /// Every device the campaign changed is back on its previous config.
    case rolledBack = "rolled_back"

    public var isFinished: Bool { self == .completed || self == .aborted || self == .canceled || self == .rolledBack }
}

/// A campaign's progress as `GET /v1/campaigns/{id}` shows it.
public struct CampaignView: Codable, Sendable, Equatable {
    public struct Wave: Codable, Sendable, Equatable {
        public var wave: Int
        public var released: Bool
        public var size: Int
        public var counts: [String: Int]

        public init(wave: Int, released: Bool, size: Int, counts: [String: Int]) {
            self.wave = wave
            self.released = released
            self.size = size
            self.counts = counts
        }
    }

    /// Distribution of a per-device gain (after − before) over succeeded jobs.
    public struct Distribution: Codable, Sendable, Equatable {
        public var n: Int
        public var mean: Double?
        public var p10: Double?
        public var p50: Double?
        public var p90: Double?

        public init(n: Int, mean: Double?, p10: Double?, p50: Double?, p90: Double?) {
            self.n = n
            self.mean = mean
            self.p10 = p10
            self.p50 = p50
            self.p90 = p90
        }
    }

    public var id: UUID
    public var domainID: UUID
    public var status: CampaignStatus
    public var statusReason: String?
    public var targetCount: Int
    public var waveCount: Int
    public var releasedWave: Int
    public var counts: [String: Int]
    public var progress: Double
    public var waves: [Wave]
    public var accuracyGain: Distribution
    public var entropyReduction: Distribution
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?

    public init(id: UUID, domainID: UUID, status: CampaignStatus, statusReason: String?, targetCount: Int, waveCount: Int,
                releasedWave: Int, counts: [String: Int], progress: Double, waves: [Wave], accuracyGain: Distribution,
                entropyReduction: Distribution, createdAt: Date, updatedAt: Date, finishedAt: Date?) {
        self.id = id
        self.domainID = domainID
        self.status = status
        self.statusReason = statusReason
        self.targetCount = targetCount
        self.waveCount = waveCount
        self.releasedWave = releasedWave
        self.counts = counts
        self.progress = progress
        self.waves = waves
        self.accuracyGain = accuracyGain
        self.entropyReduction = entropyReduction
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, status, counts, progress, waves
        case domainID = "domain_id"
        case statusReason = "status_reason"
        case targetCount = "target_count"
        case waveCount = "wave_count"
        case releasedWave = "released_wave"
        case accuracyGain = "accuracy_gain"
        case entropyReduction = "entropy_reduction"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case finishedAt = "finished_at"
    }
}

/// A domain-shift event as `GET /v1/domains/{id}` shows it.
public struct DomainView: Codable, Sendable, Equatable {
    public var id: UUID
    public var name: String
    public var description: String
    public var modelID: UUID
    public var campaignID: UUID
    public var spec: DomainRequest
    public var createdAt: Date
    /// The trigger that created the domain (absent for one an operator posted).
    public var origin: DomainOrigin?

    public init(id: UUID, name: String, description: String, modelID: UUID, campaignID: UUID, spec: DomainRequest, createdAt: Date) {
        self.id = id
        self.name = name
        self.description = description
        self.modelID = modelID
        self.campaignID = campaignID
        self.spec = spec
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, description, spec, origin
        case modelID = "model_id"
        case campaignID = "campaign_id"
        case createdAt = "created_at"
    }
}

/// Answer of `POST /v1/domains`.
public struct DomainCreated: Codable, Sendable, Equatable {
    public var domain: DomainView
    public var campaign: CampaignView

    public init(domain: DomainView, campaign: CampaignView) {
        self.domain = domain
        self.campaign = campaign
    }
}
