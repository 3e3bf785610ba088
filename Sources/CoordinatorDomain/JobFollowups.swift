import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient

/// The follow-ups of a succeeded job, as an outbox: `JobStore.complete` marks them pending in the transaction that
/// records the success; `finish` folds the job's artifact into its domain's adapter and clears the mark in one
/// transaction (so the fold happens exactly once), then re-plans the device and the devices applying the domain's
/// aggregate. The result request calls it at once; a replayed result and the maintenance loop call it again, so a
/// request that failed after the commit (a crash, a lost connection, a database error) never stalls the campaign.
package struct JobFollowups: Sendable {
    package let pool: PostgresPool
    package let jobs: JobStore
    package let aggregator: AdapterAggregator
    package let replanner: Replanner
    package let clock: WallClock
    private let releases: ReleaseStore
    private let campaigns: CampaignStore
    private let configs: ConfigStore
    private let changes: ConfigChangeStore
    /// Finishes a rollback a late follow-up raced (the scheduler's, so it keeps the configured restore deadline).
    private let rollback: Rollback

    package init(pool: PostgresPool, jobs: JobStore, aggregator: AdapterAggregator, replanner: Replanner, clock: WallClock,
                 rollback: Rollback? = nil) {
        self.pool = pool
        self.rollback = rollback ?? Rollback(pool: pool)
        releases = ReleaseStore(pool: pool)
        campaigns = CampaignStore(pool: pool)
        configs = ConfigStore(pool: pool)
        changes = ConfigChangeStore(pool: pool)
        self.jobs = jobs
        self.aggregator = aggregator
        self.replanner = replanner
        self.clock = clock
    }

    package enum Outcome: Equatable {
        /// Nothing was pending (already finished by someone else, or not a success).
        case nothingPending
        /// Another transaction is finishing them now (only when asked not to wait).
        case busy
        case finished
    }

    /// - Parameter wait: wait for a concurrent finisher (the request path) or skip a locked job (maintenance).
    @discardableResult
    package func finish(job: UUID, wait: Bool = true) throws -> Outcome {
        let now = clock.now()
        enum Step { case nothing, busy, rolledBack, done(device: UUID, kind: JobKind?, version: Int?, campaign: UUID?) }
        let step: Step = try pool.withTransaction { c in
            guard let pending = try jobs.lockFollowups(job: job, wait: wait, on: c) else {
                return wait ? .nothing : .busy   // without waiting, no row means another finisher holds it
            }
            guard pending.pending else { return .nothing }
            let campaign = try jobs.campaign(ofJob: job, on: c)
            // A campaign rolling back (or rolled back) changes no device any more: the success stays on record only.
            if let campaign, let status = try campaigns.status(campaign, on: c), status == .rollingBack || status == .rolledBack {
                try jobs.clearFollowups(job: job, on: c)
                return .rolledBack
            }
            // What a rollback of this campaign restores: the config the device runs before the re-plan below.
            if let campaign {
                try changes.recordReplaced(campaign: campaign, device: pending.device, replacedVersion: try configs.current(pending.device, on: c)?.version,
                                           now: now, on: c)
            }
            let version = pending.kind == .adapt ? try aggregator.aggregate(afterJob: job, now: now, on: c) : nil
            try jobs.clearFollowups(job: job, on: c)
            return .done(device: pending.device, kind: pending.kind, version: version, campaign: campaign)
        }
        let device: UUID, kind: JobKind?, version: Int?, campaign: UUID?
        switch step {
        case .nothing: return .nothingPending
        case .busy: return .busy
        case .rolledBack: return .finished
        case .done(let d, let k, let v, let cp): (device, kind, version, campaign) = (d, k, v, cp)
        }
        // A rollback that started after the record above and before the re-plan below must still see this device:
        // it reads the records after marking the campaign, and this re-checks the mark after the re-plan, so one of
        // the two restores it.
        defer {
            if let campaign, let status = try? campaigns.status(campaign), status == .rollingBack || status == .rolledBack {
                do { try rollback.finish(campaign: campaign, now: clock.now()) } catch {
                    Log.error("rollback of campaign \(campaign.uuidString.lowercased()) after a late follow-up failed (asking for the rollback again finishes it): \(error)")
                }
            }
        }
        // The device now runs new adapters (or measured its latencies): re-plan it; devices that applied the
        // domain's aggregate move to the new version.
        // A release's job succeeded (the device downloaded and measured the model): its config moves to that model.
        if kind == .profile, let model = try releases.model(ofJob: job) {
            replanner.replan(device: device, trigger: "release", to: model)
        } else {
            replanner.replan(device: device, trigger: kind == .profile ? "profile" : "adapters")
        }
        if version != nil, let domain = try jobs.domain(ofJob: job) {
            let others = try jobs.devicesApplyingAggregate(domain: domain).filter { $0 != device }
            do { try replanner.replan(devices: others, trigger: "adapters") } catch {
                Log.error("re-plan of \(others.count) devices applying domain \(domain.uuidString.lowercased())'s adapters failed: \(error)")
            }
        }
        return .finished
    }
}
