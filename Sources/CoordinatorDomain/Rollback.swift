import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient

/// Rolling a campaign (or the campaign a release runs as) back: every device the campaign changed gets the config
/// it ran before back, as a new version with trigger `rollback` (history is kept, never rewritten), and the campaign
/// ends `rolled_back`. What to restore is `ConfigChangeStore`'s record (the version each device's successful job
/// replaced), so a rollback works after a restart, and one interrupted mid-way is finished by the next call or by
/// the scheduler's periodic evaluation (`CampaignScheduler.evaluate` of a `rolling_back` campaign).
///
/// Starting it cancels the campaign's jobs that are queued or retrying and fences those leased (their results are
/// refused with 409, nothing more of the campaign lands), so no job can change a device after its rollback.
/// Jobs of a rolled-back campaign no longer count as the adapters a device runs (`JobStore.lastAdaptations`), so a
/// later re-plan keeps the restored adapters.
package struct Rollback: Sendable {
    package let pool: PostgresPool
    package let campaigns: CampaignStore
    package let jobs: JobStore
    package let configs: ConfigStore
    package let changes: ConfigChangeStore
    package let events: CampaignEventStore

    package init(pool: PostgresPool) {
        self.pool = pool
        campaigns = CampaignStore(pool: pool)
        jobs = JobStore(pool: pool)
        configs = ConfigStore(pool: pool)
        changes = ConfigChangeStore(pool: pool)
        events = CampaignEventStore(pool: pool)
    }

    package enum Outcome {
        case done(RollbackView)
        case notFound
        case conflict(String)
    }

    /// Whether a campaign in `status` may be rolled back (a `canceled` one ended keeping what it changed; a
    /// rolled-back one answers its rollback again).
    package static func canStart(from status: CampaignStatus) -> Bool {
        [.running, .paused, .completed, .aborted].contains(status)
    }

    /// Starts (or finishes, or answers again) the rollback of `campaign`.
    package func rollback(campaign id: UUID, cause: CampaignEvent.Cause, reason: String, now: Date) throws -> Outcome {
        let started: Bool? = try pool.withTransaction { c in
            guard let status = try campaigns.lockStatus(id, on: c) else { return nil }
            if status == .rollingBack || status == .rolledBack { return true }
            guard Self.canStart(from: status) else { return false }
            try start(id, cause: cause, reason: reason, now: now, on: c)
            return true
        }
        switch started {
        case nil: return .notFound
        case false?:
            return .conflict("A canceled campaign cannot be rolled back: canceling ended it and kept what its jobs changed.")
        case true?:
            try finish(campaign: id, now: now)
            return .done(try view(id))
        }
    }

    /// Marks the campaign `rolling_back`, cancels its open jobs and records the start, in the caller's transaction
    /// (the operator's request, or the evaluation whose threshold tripped).
    package func start(_ id: UUID, cause: CampaignEvent.Cause, reason: String, now: Date, on c: PostgresConnection) throws {
        try campaigns.setStatus(id, .rollingBack, reason: "rolling back: \(reason)", now: now, on: c)
        let canceled = try jobs.cancelOpen(campaign: id, now: now, on: c)
        let changed = try changes.summary(campaign: id, on: c).changed
        try events.record(id, .rollbackStarted, cause: cause, details: .init(devices: changed, reason: reason + (canceled > 0 ? "; \(canceled) open jobs canceled" : "")),
                          now: now, on: c)
    }

    /// Restores every device still pending, then ends the campaign `rolled_back`. Safe to call again and from any
    /// replica: each device is restored under its planning lock in the transaction that marks it.
    package func finish(campaign id: UUID, now: Date) throws {
        var after: UUID?
        while true {
            let batch = try changes.pending(campaign: id, after: after, limit: 500)
            guard let last = batch.last else { break }
            for item in batch { try restore(campaign: id, device: item.device, replacedVersion: item.replacedVersion, now: now) }
            after = last.device
        }
        try pool.withTransaction { c in
            guard try campaigns.lockStatus(id, on: c) == .rollingBack else { return }
            let summary = try changes.summary(campaign: id, on: c)
            guard summary.pending == 0 else { return }
            try campaigns.setStatus(id, .rolledBack, reason: "rolled back", now: now, on: c)
            try events.record(id, .rollbackFinished, cause: .rollback,
                              details: .init(devices: summary.changed, restored: summary.restored, unchanged: summary.unchanged), now: now, on: c)
        }
    }

    /// One device: its replaced config's decision becomes a new version, unless the device already runs it (or had
    /// no config before the campaign).
    private func restore(campaign: UUID, device: UUID, replacedVersion: Int?, now: Date) throws {
        try configs.withPlanningLock(device) { c in
            guard try changes.lockPending(campaign: campaign, device: device, on: c) else { return }
            let current = try configs.current(device, on: c)
            guard let replacedVersion, let replaced = try configs.version(device, replacedVersion, on: c) else {
                try changes.markRestored(campaign: campaign, device: device, version: current?.version, written: false, now: now, on: c)
                return
            }
            if let current, current.decision.sameConfig(as: replaced.decision) {
                try changes.markRestored(campaign: campaign, device: device, version: current.version, written: false, now: now, on: c)
                return
            }
            // Under the planning lock no single-device re-plan interleaves; a fleet write that took the next version
            // meanwhile makes the insert conflict, and the next call (or evaluation) restores this device.
            switch try configs.append(device, after: current, decision: replaced.decision, trigger: "rollback", now: now, on: c) {
            case .created(let view), .unchanged(let view):
                try changes.markRestored(campaign: campaign, device: device, version: view.version, written: true, now: now, on: c)
            case .lostRace:
                Log.info("rollback of campaign \(campaign.uuidString.lowercased()): device \(device.uuidString.lowercased()) was re-planned meanwhile; restored on the next pass")
            }
        }
    }

    /// What the rollback did, as its answer.
    package func view(_ id: UUID) throws -> RollbackView {
        guard let campaign = try campaigns.view(id) else {
            throw PostgresError(kind: .decode, message: "campaign \(id.uuidString.lowercased()) vanished during its rollback")
        }
        let s = try changes.summary(campaign: id)
        return RollbackView(campaign: campaign, changedDevices: s.changed, restoredDevices: s.restored, unchangedDevices: s.unchanged,
                            pendingDevices: s.pending)
    }
}
