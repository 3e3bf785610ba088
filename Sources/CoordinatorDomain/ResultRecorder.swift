import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient

/// What a recorded job result writes beside it: the device's metric series, and for `profile` jobs the measured
/// latencies the planner prefers over scaled reference figures. It runs inside the transaction that records the
/// result (`JobStore.complete`), so each result is recorded exactly once, with its metrics or not at all.
package struct ResultRecorder: Sendable {
    package let metrics: MetricsStore
    package let latencies: VariantLatencyStore
    package let jobs: JobStore

    package init(metrics: MetricsStore, latencies: VariantLatencyStore, jobs: JobStore) {
        self.metrics = metrics
        self.latencies = latencies
        self.jobs = jobs
    }

    package func record(job: UUID, device: UUID, result: JobResult, now: Date, on c: PostgresConnection) throws {
        guard let (kind, document) = try jobs.kindAndDocument(job: job, on: c) else { return }
        var values: [String: Double] = ["succeeded": result.outcome == .succeeded ? 1 : 0, "attempt": Double(result.attempt)]
        if let m = result.metrics {
            values["entropy_before"] = m.entropyBefore
            values["entropy_after"] = m.entropyAfter
            values["accuracy_before"] = m.accuracyBefore
            values["accuracy_after"] = m.accuracyAfter
            values["train_seconds"] = m.trainSeconds
            values["energy_mj"] = m.energyMJ
            values["samples"] = m.samples.map(Double.init)
            values["steps"] = m.steps.map(Double.init)
            values["latency_ms"] = m.latencyMs
            values["split_after_block"] = m.splitAfterBlock.map(Double.init)
        }
        try metrics.record(device: device, kind: "job.\(kind.rawValue)", job: job, values: values, now: now, on: c)
        if kind == .profile, result.outcome == .succeeded, let variantLatencies = result.variantLatenciesMs {
            try latencies.record(device: device, model: document.modelID, latencies: variantLatencies, now: now, on: c)
        }
    }
}

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

    package init(pool: PostgresPool, jobs: JobStore, aggregator: AdapterAggregator, replanner: Replanner, clock: WallClock) {
        self.pool = pool
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
        replanner.replan(device: device, trigger: kind == .profile ? "profile" : "adapters")
        if version != nil, let domain = try jobs.domain(ofJob: job) {
            let others = try jobs.devicesApplyingAggregate(domain: domain).filter { $0 != device }
            do { try replanner.replan(devices: others, trigger: "adapters") } catch {
                Log.error("re-plan of \(others.count) devices applying domain \(domain.uuidString.lowercased())'s adapters failed: \(error)")
            }
        }
        return .finished
    }
}
