import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient
import Rollout

/// Moves campaigns along: releases the next wave when the released ones met the success threshold,
/// pauses, aborts or rolls back when failures cross the abort threshold, completes when every job is done, holds
/// the campaign while its schedule is closed (before `start_at`, outside its maintenance window) and resumes it when
/// the schedule opens, and gives a continuous campaign's later matching devices their jobs.
/// The decisions are `Rollout.WaveDecision` and `Rollout.WindowSchedule` (pure); this type reads the counts and writes
/// what it decides through `CampaignStore` and `JobStore`, with its event (`CampaignEventStore`), in one transaction.
/// Idempotent and safe from any replica: each evaluation locks the campaign row.
package struct CampaignScheduler: Sendable {
    package let pool: PostgresPool
    package let campaigns: CampaignStore
    package let jobs: JobStore
    package let events: CampaignEventStore
    package let rollback: Rollback
    /// Adds continuous campaigns' new targets (nil: continuous targeting is off, as in tests of the scheduler alone).
    package let launch: CampaignLaunch?

    package enum Decision: Equatable {
        case unchanged
        case releasedWave(Int)
        case paused(String)
        case aborted(String)
        case rolledBack(String)
        case completed
        /// The schedule closed: the campaign is held until it opens.
        case held(String)
    }

    package init(pool: PostgresPool, campaigns: CampaignStore, jobs: JobStore, launch: CampaignLaunch? = nil, rollback: Rollback? = nil) {
        self.pool = pool
        self.campaigns = campaigns
        self.jobs = jobs
        self.launch = launch
        events = CampaignEventStore(pool: pool)
        self.rollback = rollback ?? Rollback(pool: pool)
    }

    /// The campaign's schedule from its spec.
    package static func schedule(_ spec: DomainRequest) -> WindowSchedule {
        WindowSchedule(startAt: spec.startAt, window: spec.window)
    }

    /// Why a closed schedule holds the campaign, and when it opens next.
    package static func holdReason(_ schedule: WindowSchedule, now: Date) -> (reason: String, opensAt: Date?) {
        let opens = schedule.nextOpening(from: now)
        let when = opens.map { WireTimestamp.format($0) } ?? "never"
        if let start = schedule.startAt, now < start { return ("waiting for start_at; opens at \(when)", opens) }
        return ("outside its maintenance window; opens at \(when)", opens)
    }

    @discardableResult
    package func evaluate(_ campaignID: UUID, now: Date) throws -> Decision {
        var finishRollback = false
        let decision: Decision = try pool.withTransaction { c in
            guard let campaign = try campaigns.lockForScheduling(campaignID, on: c) else { return .unchanged }
            if campaign.status == .rollingBack {
                finishRollback = true
                return .unchanged
            }
            let schedule = Self.schedule(campaign.spec)
            if campaign.status == .paused && campaign.heldBySchedule {
                guard schedule.isOpen(at: now) else { return .unchanged }
                try campaigns.unhold(campaignID, now: now, on: c)
                try events.record(campaignID, .scheduleOpened, cause: .schedule, now: now, on: c)
                try jobs.notifyAll(on: c)
            } else if campaign.status != .running {
                return .unchanged
            }
            if !schedule.isOpen(at: now) {
                let (reason, opens) = Self.holdReason(schedule, now: now)
                try campaigns.hold(campaignID, reason: reason, now: now, on: c)
                try events.record(campaignID, .scheduleClosed, cause: .schedule, details: .init(reason: reason, opensAt: opens), now: now, on: c)
                return .held(reason)
            }
            if campaign.spec.continuous == true, let launch {
                let added = try launch.addLaterTargets(campaign: campaignID, spec: campaign.spec, wave: campaign.releasedWave, now: now, on: c)
                if added > 0 {
                    try events.record(campaignID, .targetsAdded, cause: .targeting, details: .init(wave: campaign.releasedWave, devices: added),
                                      now: now, on: c)
                }
            }
            let released = campaign.releasedWave
            let byState = try jobs.evaluationCounts(campaign: campaignID, throughWave: released, on: c)
            switch WaveDecision.decide(.init(byState: byState), releasedWave: released, waveCount: campaign.waveCount, spec: campaign.spec) {
            case .wait:
                return .unchanged
            case .abort(let reason):
                try campaigns.setStatus(campaignID, .aborted, reason: reason, now: now, on: c)
                try jobs.cancelQueued(campaign: campaignID, now: now, on: c)
                try events.record(campaignID, .aborted, cause: .threshold, details: .init(reason: reason), now: now, on: c)
                return .aborted(reason)
            case .rollback(let reason):
                try rollback.start(campaignID, cause: .threshold, reason: reason, now: now, on: c)
                finishRollback = true
                return .rolledBack(reason)
            case .pause(let reason):
                try campaigns.setStatus(campaignID, .paused, reason: reason, now: now, on: c)
                try events.record(campaignID, .paused, cause: .threshold, details: .init(reason: reason), now: now, on: c)
                return .paused(reason)
            case .release(let wave):
                try campaigns.releaseNextWave(campaignID, now: now, on: c)
                try events.record(campaignID, .waveReleased, cause: .rollout,
                                  details: .init(wave: wave, devices: try jobs.waveSize(campaign: campaignID, wave: wave, on: c)), now: now, on: c)
                try jobs.notifyAll(on: c)
                return .releasedWave(wave)
            case .complete:
                try campaigns.setStatus(campaignID, .completed, reason: nil, now: now, on: c)
                try events.record(campaignID, .completed, cause: .rollout, now: now, on: c)
                return .completed
            }
        }
        if finishRollback { try rollback.finish(campaign: campaignID, now: now) }
        return decision
    }

    package enum Action: String, CaseIterable, Sendable {
        case pause, resume, cancel
        case retryFailed = "retry-failed"
    }

    package enum ActionOutcome {
        case done
        case notFound
        case conflict(String)
    }

    /// Operator actions. Each checks the campaign's current status, so a second click is a clear 409, not a surprise.
    package func perform(_ action: Action, campaign id: UUID, now: Date) throws -> ActionOutcome {
        let outcome: ActionOutcome = try pool.withTransaction { c in
            guard let campaign = try campaigns.lockForScheduling(id, on: c) else { return .notFound }
            let status = campaign.status
            switch action {
            case .pause:
                // A campaign held by its schedule may be paused too: the operator's pause then outlasts the window.
                guard status == .running || campaign.heldBySchedule else {
                    return .conflict("Only a running campaign can be paused; it is \(status.rawValue).")
                }
                try campaigns.clearHold(id, on: c)
                try campaigns.setStatus(id, .paused, reason: "paused by operator", now: now, on: c)
                try events.record(id, .paused, cause: .operator, details: .init(reason: "paused by operator"), now: now, on: c)
            case .resume:
                guard status == .paused, !campaign.heldBySchedule else {
                    return .conflict(campaign.heldBySchedule ? "The campaign waits for its schedule; it resumes when the schedule opens."
                                                             : "Only a paused campaign can be resumed; it is \(status.rawValue).")
                }
                try campaigns.setStatus(id, .running, reason: nil, now: now, on: c)
                try events.record(id, .resumed, cause: .operator, now: now, on: c)
                try jobs.notifyAll(on: c)
            case .cancel:
                guard !status.isFinished, status != .rollingBack else {
                    return .conflict(status == .rollingBack ? "The campaign is rolling back." : "The campaign already ended (\(status.rawValue)).")
                }
                try campaigns.clearHold(id, on: c)
                try campaigns.setStatus(id, .canceled, reason: "canceled by operator", now: now, on: c)
                try jobs.cancelQueued(campaign: id, now: now, on: c)
                try events.record(id, .canceled, cause: .operator, now: now, on: c)
            case .retryFailed:
                guard ![.canceled, .rollingBack, .rolledBack].contains(status) else {
                    return .conflict("A \(status.rawValue.replacingOccurrences(of: "_", with: " ")) campaign cannot be retried.")
                }
                // A fresh budget from the attempt reached (`JobStore.retryFailed`).
                guard try jobs.retryFailed(campaign: id, on: c) > 0 else { return .conflict("No failed or timed-out jobs to retry.") }
                try campaigns.clearHold(id, on: c)
                try campaigns.setStatus(id, .running, reason: nil, now: now, on: c)
                try events.record(id, .resumed, cause: .operator, details: .init(reason: "failed jobs retried"), now: now, on: c)
                try jobs.notifyAll(on: c)
            }
            return .done
        }
        if case .done = outcome, action == .resume || action == .retryFailed { try evaluate(id, now: now) }
        return outcome
    }

    package enum JobCancelOutcome {
        case done
        case notFound
        case conflict(String)
    }

    /// The operator cancels one device's job: a queued or retrying one becomes `canceled`; a leased one is fenced
    /// (the agent's later heartbeat and result are refused with 409). It counts as not succeeded for its wave.
    package func cancelJob(_ job: UUID, campaign id: UUID, now: Date) throws -> JobCancelOutcome {
        let outcome: JobCancelOutcome = try pool.withTransaction { c in
            guard try campaigns.lockStatus(id, on: c) != nil else { return .notFound }
            switch try jobs.cancel(job: job, campaign: id, now: now, on: c) {
            case .notFound: return .notFound
            case .finished(let state): return .conflict("The job already ended (\(state.rawValue)); only an open job can be canceled.")
            case .canceled(let device, let wave, let leased):
                try events.record(id, .jobCanceled, cause: .operator,
                                  details: .init(wave: wave, deviceID: device, jobID: job, reason: leased ? "leased job fenced" : "queued job canceled"),
                                  now: now, on: c)
                return .done
            }
        }
        if case .done = outcome { try evaluate(id, now: now) }
        return outcome
    }
}
