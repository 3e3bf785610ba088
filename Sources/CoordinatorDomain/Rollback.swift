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
/// A config alone changes nothing on a device that already installed the campaign's adapters, so each restored device
/// also gets one `restore` job in the campaign (queued in the transaction that marks the device restored, so exactly
/// once however often the rollback is finished): its agent downloads exactly the adapters the restored config runs —
/// its own earlier artifact or its domain's aggregate, named and digested in the job document — or drops its
/// adapters when that config runs none, rewrites its exported model, swaps its served network and reports. The
/// campaign stays `rolling_back` until every restore job ended, and `rollback_finished` counts those that failed —
/// except for devices that are offline: a restore job no agent took within `restoreDeadline` no longer holds the
/// rollback open (`restore_overdue`); it stays queued and runs when its device returns, unless the device's config
/// has moved on meanwhile. Asking for the rollback again re-queues failed restore jobs (`restore_retried`).
///
/// Starting it cancels the campaign's jobs that are queued or retrying and fences those leased (their results are
/// refused with 409, nothing more of the campaign lands), so no job can change a device after its rollback.
/// A canceled campaign may be rolled back too: its completed waves changed devices.
/// Jobs of a rolled-back campaign no longer count as the adapters a device runs (`JobStore.lastAdaptations`), so a
/// later re-plan keeps the restored adapters.
package struct Rollback: Sendable {
    package let pool: PostgresPool
    package let campaigns: CampaignStore
    package let jobs: JobStore
    package let configs: ConfigStore
    package let changes: ConfigChangeStore
    package let events: CampaignEventStore
    package let artifacts: JobArtifactStore
    package let domainAdapters: DomainAdapterStore
    /// How long a rollback waits for an agent to take a device's restore job before it ends without that device.
    package let restoreDeadline: TimeInterval

    package static let defaultRestoreDeadline: TimeInterval = 3600

    package init(pool: PostgresPool, restoreDeadline: TimeInterval = Rollback.defaultRestoreDeadline) {
        self.pool = pool
        self.restoreDeadline = restoreDeadline
        campaigns = CampaignStore(pool: pool)
        jobs = JobStore(pool: pool)
        configs = ConfigStore(pool: pool)
        changes = ConfigChangeStore(pool: pool)
        events = CampaignEventStore(pool: pool)
        artifacts = JobArtifactStore(pool: pool, jobs: jobs)
        domainAdapters = DomainAdapterStore(pool: pool)
    }

    package enum Outcome {
        case done(RollbackView)
        case notFound
        case conflict(String)
    }

    /// Whether a campaign in `status` may be rolled back: any that changed or may have changed devices, a canceled
    /// one included (its completed waves kept what they changed). A rolling-back or rolled-back one answers its
    /// rollback again instead.
    package static func canStart(from status: CampaignStatus) -> Bool {
        [.running, .paused, .completed, .aborted, .canceled].contains(status)
    }

    /// Starts (or finishes, or answers again) the rollback of `campaign`. Asked again, it also re-queues the restore
    /// jobs that failed, timed out or were canceled (a rolled-back campaign is rolling back again until they end).
    package func rollback(campaign id: UUID, cause: CampaignEvent.Cause, reason: String, now: Date) throws -> Outcome {
        let started: Bool? = try pool.withTransaction { c in
            guard let status = try campaigns.lockStatus(id, on: c) else { return nil }
            if status == .rollingBack || status == .rolledBack {
                let retried = try jobs.retryRestores(campaign: id, now: now, on: c)
                if retried > 0 {
                    if status == .rolledBack {
                        try campaigns.setStatus(id, .rollingBack, reason: "rolling back: retrying \(retried) restore job(s)", now: now, on: c)
                    }
                    try events.record(id, .restoreRetried, cause: cause, details: .init(devices: retried, reason: reason), now: now, on: c)
                }
                return true
            }
            guard Self.canStart(from: status) else { return false }
            try start(id, cause: cause, reason: reason, now: now, on: c)
            return true
        }
        switch started {
        case nil: return .notFound
        case false?:
            return .conflict("The campaign cannot be rolled back from its current status.")
        case true?:
            try finish(campaign: id, now: now)
            return .done(try view(id, now: now))
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
            // Done when every agent told to re-apply its previous config and adapters has answered (or its job ended).
            // Devices offline past the deadline do not hold it open: their restore jobs stay queued.
            let restores = try jobs.restoreCounts(campaign: id, overdueBefore: now.addingTimeInterval(-restoreDeadline), on: c)
            guard restores.open == restores.overdue else { return }
            var reasons: [String] = []
            if restores.failed > 0 { reasons.append("\(restores.failed) device(s) did not re-apply their previous adapters") }
            if restores.overdue > 0 {
                reasons.append("\(restores.overdue) offline device(s) re-apply them when they return")
                try events.record(id, .restoreOverdue, cause: .rollback, details: .init(
                    devices: restores.overdue,
                    reason: "no agent took the restore job within \(Int(restoreDeadline)) s; it stays queued and runs when the device returns"),
                    now: now, on: c)
            }
            try campaigns.setStatus(id, .rolledBack, reason: (["rolled back"] + reasons).joined(separator: "; "), now: now, on: c)
            try events.record(id, .rollbackFinished, cause: .rollback,
                              details: .init(devices: summary.changed, restored: summary.restored, unchanged: summary.unchanged,
                                             reapplied: restores.succeeded, failed: restores.failed), now: now, on: c)
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
                try queueRestore(campaign: campaign, device: device, version: current.version, decision: replaced.decision, now: now, on: c)
                return
            }
            // Under the planning lock no single-device re-plan interleaves; a fleet write that took the next version
            // meanwhile makes the insert conflict, and the next call (or evaluation) restores this device.
            switch try configs.append(device, after: current, decision: replaced.decision, trigger: "rollback", now: now, on: c) {
            case .created(let view), .unchanged(let view):
                try changes.markRestored(campaign: campaign, device: device, version: view.version, written: true, now: now, on: c)
                try queueRestore(campaign: campaign, device: device, version: view.version, decision: replaced.decision, now: now, on: c)
            case .lostRace:
                Log.info("rollback of campaign \(campaign.uuidString.lowercased()): device \(device.uuidString.lowercased()) was re-planned meanwhile; restored on the next pass")
            }
        }
    }

    /// Tells the device's agent to re-apply `decision` (config `version`): its model and combination with exactly the
    /// adapters it names, pinned by digest — the device's own artifact of the newest succeeded `adapt` outside
    /// rolled-back campaigns (what `JobStore.lastAdaptations` counts), or the aggregate version it names. Adapters
    /// no longer stored leave the digest out: the agent's download is refused and the job fails visibly.
    private func queueRestore(campaign: UUID, device: UUID, version: Int, decision: PlanDecision, now: Date, on c: PostgresConnection) throws {
        guard let base = try jobs.document(campaign: campaign, device: device, on: c) else { return }
        var target = RestoreTarget(configVersion: version, adapters: decision.adapters)
        var adapterVersion: Int?
        if let choice = decision.adapters {
            switch choice.source {
            case .local:
                if let a = try artifacts.newestAdaptation(device: device, domain: choice.domainID, on: c) {
                    target.artifactJobID = a.job
                    target.sha256 = Secrets.hex(a.sha256)
                }
            case .aggregated:
                let v = try choice.version.map { try domainAdapters.version(domain: choice.domainID, version: $0, on: c) }
                    ?? domainAdapters.newest(domain: choice.domainID, on: c)
                if let v {
                    target.adapters?.version = v.version
                    target.sha256 = Secrets.hex(v.sha256)
                    adapterVersion = v.version
                }
            }
        }
        let document = JobDocument(kind: .restore, modelID: decision.modelID, domainID: base.domainID, domainName: base.domainName,
                                   variants: decision.variants.map(\.variant), loss: .noTraining, steps: 0, learningRate: 0,
                                   batchSize: base.batchSize, adapterVersion: adapterVersion, restore: target)
        try jobs.queueRestore(campaign: campaign, device: device, document: document, now: now, on: c)
    }

    /// What the rollback did, as its answer.
    package func view(_ id: UUID, now: Date) throws -> RollbackView {
        guard let campaign = try campaigns.view(id) else {
            throw PostgresError(kind: .decode, message: "campaign \(id.uuidString.lowercased()) vanished during its rollback")
        }
        let s = try changes.summary(campaign: id)
        let r = try jobs.restoreCounts(campaign: id, overdueBefore: now.addingTimeInterval(-restoreDeadline))
        return RollbackView(campaign: campaign, changedDevices: s.changed, restoredDevices: s.restored, unchangedDevices: s.unchanged,
                            pendingDevices: s.pending, restoringDevices: r.open, reappliedDevices: r.succeeded, restoreFailedDevices: r.failed,
                            overdueDevices: r.overdue)
    }
}
