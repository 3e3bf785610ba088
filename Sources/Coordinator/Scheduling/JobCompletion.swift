import FleetAPI
import Foundation

/// What a device's result for a job sets going: the result and its metrics are recorded in one transaction
/// (`JobStore.complete` with `ResultRecorder.record`), then the follow-ups of a success (the outbox, see
/// `JobFollowups`) and the campaign's evaluation run. Once the result is committed the outcome is `recorded` even
/// if a follow-up fails (it is logged; the maintenance loop finishes it), and a replayed result finishes whatever
/// a failed earlier request left undone.
struct JobCompletion {
    let services: Services

    enum Outcome: Equatable {
        /// Committed: the job's state now (`succeeded`, `queued` for a retry, `failed`), or `recorded` for a replay.
        case recorded(String)
        case notFound
        case staleAttempt
    }

    func report(job: UUID, device: UUID, result: JobResult) throws -> Outcome {
        let now = services.clock.now()
        let completion = try services.jobs.complete(job: job, device: device, result: result, backoff: services.backoff) { c, _ in
            try services.results.record(job: job, device: device, result: result, now: now, on: c)
        }
        let campaign: UUID, answer: String
        switch completion {
        case .notFound: return .notFound
        case .staleAttempt: return .staleAttempt
        case .replayed(let c): (campaign, answer) = (c, "recorded")
        case .recorded(let c, let state): (campaign, answer) = (c, state.rawValue)
        }
        do {
            try JobFollowups(services: services).finish(job: job)
            try services.scheduler.evaluate(campaign, now: services.clock.now())
        } catch {
            Log.error("follow-ups of job \(job.uuidString.lowercased()) failed (the maintenance loop retries them): \(error)")
        }
        return .recorded(answer)
    }
}
