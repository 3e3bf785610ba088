import CoordinatorStore
import FleetAPI
import Foundation
import Rollout

/// What a device's result for a job sets going: the result and its metrics are recorded in one transaction
/// (`JobStore.complete` with `ResultRecorder.record`), then the follow-ups of a success (the outbox, see
/// `JobFollowups`) and the campaign's evaluation run. Once the result is committed the outcome is `recorded` even
/// if a follow-up fails (it is logged; the maintenance loop finishes it), and a replayed result finishes whatever
/// a failed earlier request left undone.
package struct JobCompletion: Sendable {
    package let jobs: JobStore
    package let results: ResultRecorder
    package let followups: JobFollowups
    package let scheduler: CampaignScheduler
    package let backoff: Backoff
    package let clock: WallClock

    package init(jobs: JobStore, results: ResultRecorder, followups: JobFollowups, scheduler: CampaignScheduler, backoff: Backoff, clock: WallClock) {
        self.jobs = jobs
        self.results = results
        self.followups = followups
        self.scheduler = scheduler
        self.backoff = backoff
        self.clock = clock
    }

    package enum Outcome: Equatable {
        /// Committed: the job's state now (`succeeded`, `queued` for a retry, `failed`), or `recorded` for a replay.
        case recorded(String)
        case notFound
        case staleAttempt
    }

    package func report(job: UUID, device: UUID, result: JobResult) throws -> Outcome {
        let now = clock.now()
        let events = CampaignEventStore(pool: jobs.pool)
        let completion = try jobs.complete(job: job, device: device, result: result, backoff: backoff) { c, state in
            try results.record(job: job, device: device, result: result, now: now, on: c)
            // A gate's refusal is part of the campaign's history (its measurements are the operator's evidence).
            if state == .rejected, let campaign = try jobs.campaign(ofJob: job, on: c) {
                let verdict = try jobs.gateVerdict(job: job, on: c)
                try events.record(campaign, .gateRejected, cause: .gate,
                                  details: .init(deviceID: device, jobID: job, gate: verdict?.verdict, reason: verdict?.verdict?.reasons.joined(separator: "; ")),
                                  now: now, on: c)
            }
            // A device that could not put its previous adapters back is part of its rollback's history.
            if state == .failed, try jobs.kindAndDocument(job: job, on: c)?.kind == .restore, let campaign = try jobs.campaign(ofJob: job, on: c) {
                try events.record(campaign, .restoreFailed, cause: .rollback,
                                  details: .init(deviceID: device, jobID: job, reason: result.error), now: now, on: c)
            }
        }
        let campaign: UUID, answer: String
        switch completion {
        case .notFound: return .notFound
        case .staleAttempt: return .staleAttempt
        case .replayed(let c): (campaign, answer) = (c, "recorded")
        case .recorded(let c, let state): (campaign, answer) = (c, state.rawValue)
        }
        do {
            try followups.finish(job: job)
            try scheduler.evaluate(campaign, now: clock.now())
        } catch {
            Log.error("follow-ups of job \(job.uuidString.lowercased()) failed (the maintenance loop retries them): \(error)")
        }
        return .recorded(answer)
    }
}
