import FleetAPI
import Foundation
import PostgresClient
import Rollout

/// Moves campaigns along: releases the next wave when the released ones met the success threshold,
/// pauses or aborts when failures cross the abort threshold, completes when every job is done.
/// The decision is `Rollout.WaveDecision` (pure); this type counts the jobs and writes what it decides.
/// Idempotent and safe from any replica: each evaluation locks the campaign row.
struct CampaignScheduler: Sendable {
    let pool: PostgresPool
    let campaigns: CampaignStore
    let jobs: JobStore

    enum Decision: Equatable {
        case unchanged
        case releasedWave(Int)
        case paused(String)
        case aborted(String)
        case completed
    }

    @discardableResult
    func evaluate(_ campaignID: UUID, now: Date) throws -> Decision {
        try pool.withTransaction { c in
            guard let row = try c.query("""
                SELECT c.status, c.released_wave, c.wave_count, d.spec::text AS spec
                FROM campaigns c JOIN domains d ON d.id = c.domain_id WHERE c.id = \(campaignID) FOR UPDATE OF c
                """).rows.first else { return .unchanged }
            guard try row.decode("status", as: String.self) == CampaignStatus.running.rawValue else { return .unchanged }
            let released = try row.decode("released_wave", as: Int.self)
            let waveCount = try row.decode("wave_count", as: Int.self)
            let spec = try JSON.decode(DomainRequest.self, from: try row.decode("spec", as: String.self))
            var byState: [String: Int] = [:]
            // A success whose follow-ups (aggregation, re-plan) are still pending counts as open: the next wave may
            // apply the aggregate those follow-ups fold.
            for r in try c.query("""
                SELECT CASE WHEN followup_pending THEN 'followup_pending' ELSE state END AS state, count(*)::bigint AS n
                FROM jobs WHERE campaign_id = \(campaignID) AND wave <= \(released) GROUP BY 1
                """).rows {
                byState[try r.decode("state", as: String.self)] = try r.decode("n", as: Int.self)
            }
            switch WaveDecision.decide(.init(byState: byState), releasedWave: released, waveCount: waveCount, spec: spec) {
            case .wait:
                return .unchanged
            case .abort(let reason):
                try setStatus(c, campaignID, .aborted, reason: reason, now: now)
                try c.query("""
                    UPDATE jobs SET state = 'canceled', finished_at = \(now), updated_at = \(now)
                    WHERE campaign_id = \(campaignID) AND state = 'queued'
                    """)
                return .aborted(reason)
            case .pause(let reason):
                try setStatus(c, campaignID, .paused, reason: reason, now: now)
                return .paused(reason)
            case .release(let wave):
                try c.query("""
                    UPDATE campaigns SET released_wave = released_wave + 1, updated_at = \(now) WHERE id = \(campaignID)
                    """)
                try c.query("SELECT pg_notify(\(JobStore.channel), '*')")
                return .releasedWave(wave)
            case .complete:
                try setStatus(c, campaignID, .completed, reason: nil, now: now)
                return .completed
            }
        }
    }

    private func setStatus(_ c: PostgresConnection, _ id: UUID, _ status: CampaignStatus, reason: String?, now: Date) throws {
        let finished: Date? = status.isFinished ? now : nil
        try c.query("""
            UPDATE campaigns SET status = \(status.rawValue), status_reason = \(reason), updated_at = \(now), finished_at = \(finished)
            WHERE id = \(id)
            """)
    }

    enum Action: String, CaseIterable {
        case pause, resume, cancel
        case retryFailed = "retry-failed"
    }

    enum ActionOutcome {
        case done
        case notFound
        case conflict(String)
    }

    /// Operator actions. Each checks the campaign's current status, so a second click is a clear 409, not a surprise.
    func perform(_ action: Action, campaign id: UUID, now: Date) throws -> ActionOutcome {
        let outcome: ActionOutcome = try pool.withTransaction { c in
            guard let row = try c.query("SELECT status FROM campaigns WHERE id = \(id) FOR UPDATE").rows.first else { return .notFound }
            let status = try row.decodeEnum("status", as: CampaignStatus.self)
            switch action {
            case .pause:
                guard status == .running else { return .conflict("Only a running campaign can be paused; it is \(status.rawValue).") }
                try setStatus(c, id, .paused, reason: "paused by operator", now: now)
            case .resume:
                guard status == .paused else { return .conflict("Only a paused campaign can be resumed; it is \(status.rawValue).") }
                try setStatus(c, id, .running, reason: nil, now: now)
                try c.query("SELECT pg_notify(\(JobStore.channel), '*')")
            case .cancel:
                guard !status.isFinished else { return .conflict("The campaign already ended (\(status.rawValue)).") }
                try setStatus(c, id, .canceled, reason: "canceled by operator", now: now)
                try c.query("""
                    UPDATE jobs SET state = 'canceled', finished_at = \(now), updated_at = \(now)
                    WHERE campaign_id = \(id) AND state = 'queued'
                    """)
            case .retryFailed:
                guard status != .canceled else { return .conflict("A canceled campaign cannot be retried.") }
                // A fresh budget of max_attempts from the attempt reached: the attempt number itself only rises, so
                // a worker of an earlier attempt can never heartbeat or report onto the retry.
                let n = try c.query("""
                    UPDATE jobs SET state = 'queued', attempt_base = attempt, run_after = now(), finished_at = NULL, result = NULL,
                           updated_at = now()
                    WHERE campaign_id = \(id) AND state IN ('failed', 'timed_out')
                    """).affectedRows
                guard n > 0 else { return .conflict("No failed or timed-out jobs to retry.") }
                try setStatus(c, id, .running, reason: nil, now: now)
                try c.query("SELECT pg_notify(\(JobStore.channel), '*')")
            }
            return .done
        }
        if case .done = outcome, action == .resume || action == .retryFailed { try evaluate(id, now: now) }
        return outcome
    }
}
