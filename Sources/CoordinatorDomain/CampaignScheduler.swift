import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient
import Rollout

/// Moves campaigns along: releases the next wave when the released ones met the success threshold,
/// pauses or aborts when failures cross the abort threshold, completes when every job is done.
/// The decision is `Rollout.WaveDecision` (pure); this type reads the counts and writes what it decides through
/// `CampaignStore` and `JobStore`, in one transaction.
/// Idempotent and safe from any replica: each evaluation locks the campaign row.
package struct CampaignScheduler: Sendable {
    package let pool: PostgresPool
    package let campaigns: CampaignStore
    package let jobs: JobStore

    package enum Decision: Equatable {
        case unchanged
        case releasedWave(Int)
        case paused(String)
        case aborted(String)
        case completed
    }

    package init(pool: PostgresPool, campaigns: CampaignStore, jobs: JobStore) {
        self.pool = pool
        self.campaigns = campaigns
        self.jobs = jobs
    }

    @discardableResult
    package func evaluate(_ campaignID: UUID, now: Date) throws -> Decision {
        try pool.withTransaction { c in
            guard let campaign = try campaigns.lockForEvaluation(campaignID, on: c), campaign.status == .running else { return .unchanged }
            let released = campaign.releasedWave
            let byState = try jobs.evaluationCounts(campaign: campaignID, throughWave: released, on: c)
            switch WaveDecision.decide(.init(byState: byState), releasedWave: released, waveCount: campaign.waveCount, spec: campaign.spec) {
            case .wait:
                return .unchanged
            case .abort(let reason):
                try campaigns.setStatus(campaignID, .aborted, reason: reason, now: now, on: c)
                try jobs.cancelQueued(campaign: campaignID, now: now, on: c)
                return .aborted(reason)
            case .pause(let reason):
                try campaigns.setStatus(campaignID, .paused, reason: reason, now: now, on: c)
                return .paused(reason)
            case .release(let wave):
                try campaigns.releaseNextWave(campaignID, now: now, on: c)
                try jobs.notifyAll(on: c)
                return .releasedWave(wave)
            case .complete:
                try campaigns.setStatus(campaignID, .completed, reason: nil, now: now, on: c)
                return .completed
            }
        }
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
            guard let status = try campaigns.lockStatus(id, on: c) else { return .notFound }
            switch action {
            case .pause:
                guard status == .running else { return .conflict("Only a running campaign can be paused; it is \(status.rawValue).") }
                try campaigns.setStatus(id, .paused, reason: "paused by operator", now: now, on: c)
            case .resume:
                guard status == .paused else { return .conflict("Only a paused campaign can be resumed; it is \(status.rawValue).") }
                try campaigns.setStatus(id, .running, reason: nil, now: now, on: c)
                try jobs.notifyAll(on: c)
            case .cancel:
                guard !status.isFinished else { return .conflict("The campaign already ended (\(status.rawValue)).") }
                try campaigns.setStatus(id, .canceled, reason: "canceled by operator", now: now, on: c)
                try jobs.cancelQueued(campaign: id, now: now, on: c)
            case .retryFailed:
                guard status != .canceled else { return .conflict("A canceled campaign cannot be retried.") }
                // A fresh budget from the attempt reached (`JobStore.retryFailed`).
                guard try jobs.retryFailed(campaign: id, on: c) > 0 else { return .conflict("No failed or timed-out jobs to retry.") }
                try campaigns.setStatus(id, .running, reason: nil, now: now, on: c)
                try jobs.notifyAll(on: c)
            }
            return .done
        }
        if case .done = outcome, action == .resume || action == .retryFailed { try evaluate(id, now: now) }
        return outcome
    }
}
