import Foundation

/// One entry of a campaign's (or release's) history, as `GET /v1/campaigns/{id}/events` lists it, oldest first.
public struct CampaignEvent: Codable, Sendable, Equatable {
    /// What happened.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case created
        case waveReleased = "wave_released"
        case paused, resumed, canceled, aborted, completed
        case gateRejected = "gate_rejected"
        case jobCanceled = "job_canceled"
        case rollbackStarted = "rollback_started"
        case rollbackFinished = "rollback_finished"
        /// A device's `restore` job ended without putting its previous adapters back (failed, timed out, canceled).
        case restoreFailed = "restore_failed"
        /// The rollback ended without devices whose restore job no agent took within the restore deadline (offline
        /// devices): their jobs stay queued and run when they return.
        case restoreOverdue = "restore_overdue"
        /// A repeated rollback put the campaign's failed, timed-out or canceled restore jobs back in the queue.
        case restoreRetried = "restore_retried"
        /// The schedule closed (before `start_at`, or outside the maintenance window): queued jobs wait.
        case scheduleClosed = "schedule_closed"
        /// The schedule opened again: leasing resumes.
        case scheduleOpened = "schedule_opened"
        /// Continuous targeting gave devices that match the selector later their jobs.
        case targetsAdded = "targets_added"
    }

    /// Who or what caused it.
    public enum Cause: String, Codable, Sendable, CaseIterable {
        case `operator`
        /// The wave's success or failure threshold.
        case threshold
        /// The quality gate (adapt) or the release gate (latency budget).
        case gate
        case schedule
        /// The campaign's own progress (created, a wave's success, completion).
        case rollout
        case rollback
        /// Continuous targeting.
        case targeting
    }

    /// What the event concerns, by kind: the wave and its devices, the device and job, the gate's measurements,
    /// the devices a rollback restored, the reason given.
    public struct Details: Codable, Sendable, Equatable {
        public var wave: Int?
        public var devices: Int?
        public var deviceID: UUID?
        public var jobID: UUID?
        public var gate: GateVerdict?
        public var reason: String?
        /// Devices whose config a rollback restored as a new version.
        public var restored: Int?
        /// Devices a rollback found already on their previous config (or that had none before).
        public var unchanged: Int?
        /// When the schedule opens next (`schedule_closed`).
        public var opensAt: Date?
        /// Devices whose agent re-applied its previous config and adapters (`restore` job succeeded).
        public var reapplied: Int?
        /// Devices whose `restore` job ended otherwise (failed, timed out, canceled).
        public var failed: Int?

        public init(wave: Int? = nil, devices: Int? = nil, deviceID: UUID? = nil, jobID: UUID? = nil, gate: GateVerdict? = nil,
                    reason: String? = nil, restored: Int? = nil, unchanged: Int? = nil, opensAt: Date? = nil,
                    reapplied: Int? = nil, failed: Int? = nil) {
            self.wave = wave
            self.devices = devices
            self.deviceID = deviceID
            self.jobID = jobID
            self.gate = gate
            self.reason = reason
            self.restored = restored
            self.unchanged = unchanged
            self.opensAt = opensAt
            self.reapplied = reapplied
            self.failed = failed
        }

        enum CodingKeys: String, CodingKey {
            case wave, devices, gate, reason, restored, unchanged, reapplied, failed
            case deviceID = "device_id"
            case jobID = "job_id"
            case opensAt = "opens_at"
        }
    }

    /// Rising; the cursor of the next page (`after`).
    public var id: Int
    public var campaignID: UUID
    public var kind: Kind
    public var cause: Cause
    public var details: Details
    public var at: Date

    public init(id: Int, campaignID: UUID, kind: Kind, cause: Cause, details: Details, at: Date) {
        self.id = id
        self.campaignID = campaignID
        self.kind = kind
        self.cause = cause
        self.details = details
        self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, cause, details, at
        case campaignID = "campaign_id"
    }
}

/// Answer of `POST /v1/campaigns/{id}/rollback` (and of a release's): what the rollback did. A second call answers
/// the same figures and writes nothing.
public struct RollbackView: Codable, Sendable, Equatable {
    public var campaign: CampaignView
    /// Devices the campaign changed (their job succeeded and was followed up).
    public var changedDevices: Int
    /// Devices given their previous config back as a new version (trigger `rollback`).
    public var restoredDevices: Int
    /// Devices already on their previous config, or that had none before the campaign.
    public var unchangedDevices: Int
    /// Devices still to restore (a rollback interrupted by a restart; the coordinator finishes it).
    public var pendingDevices: Int
    /// Devices whose `restore` job (re-apply the previous config and adapters) is still open: the rollback ends
    /// (`rolled_back`) when none is.
    public var restoringDevices: Int
    /// Devices whose agent re-applied its previous config and adapters and reported it.
    public var reappliedDevices: Int
    /// Devices whose `restore` job failed, timed out or was canceled (the campaign's jobs and events say why).
    public var restoreFailedDevices: Int
    /// Of `restoring_devices`, those whose restore job has waited untaken past the restore deadline (offline): the
    /// rollback does not wait for them; their jobs run when they return.
    public var overdueDevices: Int

    public init(campaign: CampaignView, changedDevices: Int, restoredDevices: Int, unchangedDevices: Int, pendingDevices: Int,
                restoringDevices: Int = 0, reappliedDevices: Int = 0, restoreFailedDevices: Int = 0, overdueDevices: Int = 0) {
        self.overdueDevices = overdueDevices
        self.campaign = campaign
        self.changedDevices = changedDevices
        self.restoredDevices = restoredDevices
        self.unchangedDevices = unchangedDevices
        self.pendingDevices = pendingDevices
        self.restoringDevices = restoringDevices
        self.reappliedDevices = reappliedDevices
        self.restoreFailedDevices = restoreFailedDevices
    }

    enum CodingKeys: String, CodingKey {
        case campaign
        case changedDevices = "changed_devices"
        case restoredDevices = "restored_devices"
        case unchangedDevices = "unchanged_devices"
        case pendingDevices = "pending_devices"
        case restoringDevices = "restoring_devices"
        case reappliedDevices = "reapplied_devices"
        case restoreFailedDevices = "restore_failed_devices"
        case overdueDevices = "overdue_devices"
    }
}
