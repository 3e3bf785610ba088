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

    package init(pool: PostgresPool, jobs: JobStore, aggregator: AdapterAggregator, replanner: Replanner, clock: WallClock) {
        self.pool = pool
        releases = ReleaseStore(pool: pool)
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
        enum Step { case nothing, busy, done(device: UUID, kind: JobKind?, version: Int?) }
        let step: Step = try pool.withTransaction { c in
            guard let pending = try jobs.lockFollowups(job: job, wait: wait, on: c) else {
                return wait ? .nothing : .busy   // without waiting, no row means another finisher holds it
            }
            guard pending.pending else { return .nothing }
            let version = pending.kind == .adapt ? try aggregator.aggregate(afterJob: job, now: now, on: c) : nil
            try jobs.clearFollowups(job: job, on: c)
            return .done(device: pending.device, kind: pending.kind, version: version)
        }
        let device: UUID, kind: JobKind?, version: Int?
        switch step {
        case .nothing: return .nothingPending
        case .busy: return .busy
        case .done(let d, let k, let v): (device, kind, version) = (d, k, v)
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
