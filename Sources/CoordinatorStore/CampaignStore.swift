import FleetAPI
import Foundation
import PostgresClient
import Rollout

/// SQL for the `domains` and `campaigns` aggregate: a domain and its one campaign, the campaign's status and
/// released wave. The campaign's jobs are `JobStore`'s.
package struct CampaignStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Writes the domain and its campaign in the caller's transaction (which writes the campaign's jobs too).
    package func create(domainID: UUID, campaignID: UUID, request: DomainRequest, targetCount: Int, waveCount: Int,
                now: Date, on c: PostgresConnection) throws {
        let rollout = request.effectiveRollout
        try c.query("""
            INSERT INTO domains (id, name, description, model_id, spec, created_at)
            VALUES (\(domainID), \(request.name), \(request.description ?? ""), \(request.modelID), \(try WireJSON.string(request))::jsonb, \(now))
            """)
        try c.query("""
            INSERT INTO campaigns (id, domain_id, status, wave_count, released_wave, target_count, max_per_minute, created_at, updated_at)
            VALUES (\(campaignID), \(domainID), 'running', \(waveCount), 0, \(targetCount), \(rollout.maxPerMinute), \(now), \(now))
            """)
    }

    /// What an evaluation decides from, read with the campaign's row locked until the caller's transaction ends (so
    /// evaluations of one campaign, from any replica, run one at a time). nil when there is no such campaign.
    package func lockForEvaluation(_ id: UUID, on c: PostgresConnection) throws -> (status: CampaignStatus, releasedWave: Int, waveCount: Int, spec: DomainRequest)? {
        guard let row = try c.query("""
            SELECT c.status, c.released_wave, c.wave_count, d.spec::text AS spec
            FROM campaigns c JOIN domains d ON d.id = c.domain_id WHERE c.id = \(id) FOR UPDATE OF c
            """).rows.first else { return nil }
        return (try row.decodeEnum("status", as: CampaignStatus.self), try row.decode("released_wave", as: Int.self),
                try row.decode("wave_count", as: Int.self), try WireJSON.decode(DomainRequest.self, from: try row.decode("spec", as: String.self)))
    }

    /// What the scheduler decides from (status, whether the schedule holds it, waves, spec), read with the campaign's
    /// row locked until the caller's transaction ends; nil when there is no such campaign.
    package struct Scheduling: Sendable {
        package let status: CampaignStatus
        package let heldBySchedule: Bool
        package let releasedWave: Int
        package let waveCount: Int
        package let spec: DomainRequest
    }

    package func lockForScheduling(_ id: UUID, on c: PostgresConnection) throws -> Scheduling? {
        guard let row = try c.query("""
            SELECT c.status, c.held_by_schedule, c.released_wave, c.wave_count, d.spec::text AS spec
            FROM campaigns c JOIN domains d ON d.id = c.domain_id WHERE c.id = \(id) FOR UPDATE OF c
            """).rows.first else { return nil }
        return Scheduling(status: try row.decodeEnum("status", as: CampaignStatus.self), heldBySchedule: try row.decode("held_by_schedule", as: Bool.self),
                          releasedWave: try row.decode("released_wave", as: Int.self), waveCount: try row.decode("wave_count", as: Int.self),
                          spec: try WireJSON.decode(DomainRequest.self, from: try row.decode("spec", as: String.self)))
    }

    /// Pauses a campaign because its schedule is closed (the scheduler resumes it), in the caller's transaction.
    package func hold(_ id: UUID, reason: String, now: Date, on c: PostgresConnection) throws {
        try c.query("""
            UPDATE campaigns SET status = 'paused', held_by_schedule = true, status_reason = \(reason), updated_at = \(now) WHERE id = \(id)
            """)
    }

    /// Resumes a campaign its schedule held, in the caller's transaction.
    package func unhold(_ id: UUID, now: Date, on c: PostgresConnection) throws {
        try c.query("""
            UPDATE campaigns SET status = 'running', held_by_schedule = false, status_reason = NULL, updated_at = \(now)
            WHERE id = \(id) AND held_by_schedule
            """)
    }

    /// Forgets the schedule's hold before an operator's action sets the status, in the caller's transaction.
    package func clearHold(_ id: UUID, on c: PostgresConnection) throws {
        try c.query("UPDATE campaigns SET held_by_schedule = false WHERE id = \(id)")
    }

    /// The domain of a campaign, in the caller's transaction.
    package func domainID(ofCampaign id: UUID, on c: PostgresConnection) throws -> UUID? {
        try c.query("SELECT domain_id FROM campaigns WHERE id = \(id)").rows.first?.decode("domain_id", as: UUID.self)
    }

    /// Adds targets found later (continuous targeting), in the caller's transaction.
    package func addTargets(_ id: UUID, count: Int, now: Date, on c: PostgresConnection) throws {
        try c.query("UPDATE campaigns SET target_count = target_count + \(count), updated_at = \(now) WHERE id = \(id)")
    }

    /// A campaign's status with its row locked until the caller's transaction ends (an operator action); nil when
    /// there is no such campaign.
    package func lockStatus(_ id: UUID, on c: PostgresConnection) throws -> CampaignStatus? {
        try c.query("SELECT status FROM campaigns WHERE id = \(id) FOR UPDATE").rows.first.map { try $0.decodeEnum("status", as: CampaignStatus.self) }
    }

    /// Sets a campaign's status (and its end, when the status is final), in the caller's transaction.
    package func setStatus(_ id: UUID, _ status: CampaignStatus, reason: String?, now: Date, on c: PostgresConnection) throws {
        let finished: Date? = status.isFinished ? now : nil
        try c.query("""
            UPDATE campaigns SET status = \(status.rawValue), status_reason = \(reason), updated_at = \(now), finished_at = \(finished)
            WHERE id = \(id)
            """)
    }

    /// Releases a campaign's next wave, in the caller's transaction.
    package func releaseNextWave(_ id: UUID, now: Date, on c: PostgresConnection) throws {
        try c.query("UPDATE campaigns SET released_wave = released_wave + 1, updated_at = \(now) WHERE id = \(id)")
    }

    /// Campaigns by status, for the fleet summary.
    package func countsByStatus() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try pool.query("SELECT status AS k, count(*)::bigint AS n FROM campaigns GROUP BY status").rows {
            out[try row.decode("k", as: String.self)] = try row.decode("n", as: Int.self)
        }
        return out
    }

    /// Campaigns in id order after the cursor, optionally of one status or one domain: the operator's list.
    package func list(limit: Int, after: UUID?, status: CampaignStatus?, domain: UUID?, model: UUID? = nil) throws -> Page<CampaignView> {
        var q: PostgresQuery = "SELECT c.id FROM campaigns c JOIN domains d ON d.id = c.domain_id WHERE true"
        if let status { q.append(" AND c.status = \(status.rawValue)") }
        if let domain { q.append(" AND c.domain_id = \(domain)") }
        if let model { q.append(" AND d.model_id = \(model)") }
        if let after { q.append(" AND c.id > \(after)") }
        q.append(" ORDER BY c.id LIMIT \(limit + 1)")
        let ids = try pool.query(q).rows.map { try $0.decode("id", as: UUID.self) }
        let page = Array(ids.prefix(limit))
        return Page(items: try page.compactMap { try view($0) }, next: ids.count > limit ? page.last?.uuidString.lowercased() : nil)
    }

    package func exists(_ id: UUID) throws -> Bool {
        !(try pool.query("SELECT 1 FROM campaigns WHERE id = \(id)").rows.isEmpty)
    }

    /// Every campaign the maintenance loop re-evaluates periodically: running ones, those their schedule holds (to
    /// resume them when it opens) and those rolling back (to finish an interrupted rollback).
    package func runningCampaigns() throws -> [UUID] {
        try pool.query("""
            SELECT id FROM campaigns WHERE status IN ('running', 'rolling_back') OR (status = 'paused' AND held_by_schedule) ORDER BY id
            """).rows.map { try $0.decode("id", as: UUID.self) }
    }

    /// A campaign's status, without a lock.
    package func status(_ id: UUID, on c: PostgresConnection? = nil) throws -> CampaignStatus? {
        let q: PostgresQuery = "SELECT status FROM campaigns WHERE id = \(id)"
        return try (c.map { try $0.query(q) } ?? pool.query(q)).rows.first.map { try $0.decodeEnum("status", as: CampaignStatus.self) }
    }

    package func domain(_ id: UUID, on c: PostgresConnection? = nil) throws -> DomainView? {
        let q: PostgresQuery = """
            SELECT d.id, d.name, d.description, d.model_id, d.spec::text AS spec, d.created_at, c.id AS campaign_id
            FROM domains d JOIN campaigns c ON c.domain_id = d.id WHERE d.id = \(id)
            """
        return try (c.map { try $0.query(q) } ?? pool.query(q)).rows.first.map(Self.decodeDomain)
    }

    package func domains(limit: Int, after: UUID?) throws -> Page<DomainView> {
        var q: PostgresQuery = """
            SELECT d.id, d.name, d.description, d.model_id, d.spec::text AS spec, d.created_at, c.id AS campaign_id
            FROM domains d JOIN campaigns c ON c.domain_id = d.id WHERE true
            """
        if let after { q.append(" AND d.id > \(after)") }
        q.append(" ORDER BY d.id LIMIT \(limit + 1)")
        let items = try pool.query(q).rows.map(Self.decodeDomain)
        let page = Array(items.prefix(limit))
        return Page(items: page, next: items.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    package static func decodeDomain(_ row: PostgresRow) throws -> DomainView {
        DomainView(id: try row.decode("id", as: UUID.self), name: try row.decode("name", as: String.self),
                   description: try row.decode("description", as: String.self),
                   modelID: try row.decode("model_id", as: UUID.self),
                   campaignID: try row.decode("campaign_id", as: UUID.self),
                   spec: try WireJSON.decode(DomainRequest.self, from: try row.decode("spec", as: String.self)),
                   createdAt: try row.decode("created_at", as: Date.self))
    }

    package func view(_ id: UUID, on c: PostgresConnection? = nil) throws -> CampaignView? {
        func run(_ c: PostgresConnection) throws -> CampaignView? {
            guard let row = try c.query("""
                SELECT id, domain_id, status, status_reason, target_count, wave_count, released_wave, created_at, updated_at, finished_at
                FROM campaigns WHERE id = \(id)
                """).rows.first else { return nil }
            let released = try row.decode("released_wave", as: Int.self)
            var waves: [Int: CampaignView.Wave] = [:]
            var counts: [String: Int] = [:]
            for r in try c.query("SELECT wave, state, count(*)::bigint AS n FROM jobs WHERE campaign_id = \(id) AND kind <> 'restore' GROUP BY wave, state").rows {
                let wave = try r.decode("wave", as: Int.self)
                let state = try r.decode("state", as: String.self)
                let n = try r.decode("n", as: Int.self)
                waves[wave, default: .init(wave: wave, released: wave <= released, size: 0, counts: [:])].counts[state] = n
                waves[wave]!.size += n
                counts[state, default: 0] += n
            }
            let target = try row.decode("target_count", as: Int.self)
            let done = ["succeeded", "failed", "timed_out", "canceled", "rejected"].reduce(0) { $0 + (counts[$1] ?? 0) }
            return CampaignView(
                id: id, domainID: try row.decode("domain_id", as: UUID.self),
                status: try row.decodeEnum("status", as: CampaignStatus.self),
                statusReason: try row.decode("status_reason", as: String?.self), targetCount: target,
                waveCount: try row.decode("wave_count", as: Int.self), releasedWave: released, counts: counts,
                progress: target == 0 ? 1 : Double(done) / Double(target),
                waves: waves.keys.sorted().map { waves[$0]! },
                accuracyGain: try distribution(c, campaign: id, after: "accuracy_after", before: "accuracy_before", sign: 1),
                entropyReduction: try distribution(c, campaign: id, after: "entropy_after", before: "entropy_before", sign: -1),
                createdAt: try row.decode("created_at", as: Date.self), updatedAt: try row.decode("updated_at", as: Date.self),
                finishedAt: try row.decode("finished_at", as: Date?.self))
        }
        if let c { return try run(c) }
        return try pool.withConnection(run)
    }

    /// Percentiles of sign × (after − before) over succeeded jobs that reported both.
    private func distribution(_ c: PostgresConnection, campaign: UUID, after: String, before: String, sign: Double) throws -> CampaignView.Distribution {
        let row = try c.query("""
            WITH g AS (
                SELECT \(sign) * ((result->'metrics'->>\(after))::float8 - (result->'metrics'->>\(before))::float8) AS gain
                FROM jobs WHERE campaign_id = \(campaign) AND state = 'succeeded' AND kind <> 'restore'
                  AND result->'metrics' ? \(after) AND result->'metrics' ? \(before))
            SELECT count(*)::bigint AS n, avg(gain) AS mean,
                   percentile_cont(0.1) WITHIN GROUP (ORDER BY gain) AS p10,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY gain) AS p50,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY gain) AS p90
            FROM g
            """).rows[0]
        return .init(n: try row.decode("n", as: Int.self), mean: try row.decode("mean", as: Double?.self),
                     p10: try row.decode("p10", as: Double?.self), p50: try row.decode("p50", as: Double?.self),
                     p90: try row.decode("p90", as: Double?.self))
    }
}
