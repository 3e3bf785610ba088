import FleetAPI
import Foundation
import PostgresClient
import Rollout

/// SQL for the jobs table: leasing, heartbeats, results, rescue of expired leases.
/// Every state change is guarded by (id, device, attempt, state), so a superseded attempt changes nothing.
/// Attempt numbers only rise (the retry budget counts from `attempt_base`), and every time a lease is compared with
/// comes from the database's clock, so replicas whose clocks disagree still agree on every lease.
package struct JobStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// NOTIFY channel; the payload is a device id, or `*` when many devices may have work.
    package static let channel = "fleetadapt_jobs"

    /// The database's clock as RFC 3339 text with microseconds (the format of `WireTimestamp.format`), for JSON values.
    package static let nowText = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

    /// Leases the calling device's next ready job in one statement: the candidate is locked with
    /// SKIP LOCKED (concurrent pollers never wait on each other nor take the same row), then updated.
    /// Jobs of paused or unreleased waves, rate-limited campaigns, or a device already running a job are skipped; a
    /// rolling-back campaign hands out only its `restore` jobs (neither waves nor its rate limit hold a rollback back),
    /// and so does a rolled-back one whose rollback ended without an offline device (`Rollback.restoreDeadline`):
    /// its restore job runs when the device returns, unless the device's config has moved past the restored version.
    /// Every time in it (ready, lease, expiry, the rate window) is the database's clock, which all replicas share.
    /// A device that already holds a job is answered by the NOT EXISTS (one probe of jobs_one_active_per_device_idx)
    /// rather than by a failed UPDATE; the unique index still decides a race between two polls of one device. A
    /// campaign's recent leases are counted on jobs_campaign_leased_idx and only up to its limit.
    package func leaseNext(device: UUID) throws -> LeasedJob? {
        do {
            let rows = try pool.query("""
                WITH candidate AS (
                    SELECT j.id
                    FROM jobs j JOIN campaigns c ON c.id = j.campaign_id
                    WHERE j.device_id = \(device) AND j.state = 'queued' AND j.run_after <= now()
                      AND j.attempt - j.attempt_base < j.max_attempts
                      AND ((c.status = 'running' AND j.wave <= c.released_wave)
                           OR (j.kind = 'restore' AND c.status IN ('rolling_back', 'rolled_back') AND \(unsafeRaw: Self.restoreIsCurrent)))
                      AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.device_id = j.device_id AND a.state IN ('leased', 'running'))
                      AND (j.kind = 'restore' OR c.max_per_minute IS NULL OR c.max_per_minute > (
                            SELECT count(*) FROM (
                                SELECT FROM jobs r
                                WHERE r.campaign_id = c.id AND r.leased_at > now() - interval '1 minute'
                                LIMIT c.max_per_minute) AS recent))
                    ORDER BY j.run_after, j.id
                    LIMIT 1
                    FOR UPDATE OF j SKIP LOCKED)
                UPDATE jobs SET state = 'leased', attempt = jobs.attempt + 1, leased_at = now(),
                       lease_expires_at = now() + make_interval(secs => least(jobs.lease_s, jobs.timeout_s)),
                       progress = NULL, updated_at = now()
                FROM candidate
                WHERE jobs.id = candidate.id
                RETURNING jobs.id, jobs.campaign_id, jobs.attempt, jobs.lease_expires_at, jobs.document::text AS document
                """).rows
            guard let row = rows.first else { return nil }
            return LeasedJob(id: try row.decode("id", as: UUID.self),
                             campaignID: try row.decode("campaign_id", as: UUID.self),
                             attempt: try row.decode("attempt", as: Int.self),
                             leaseExpiresAt: try row.decode("lease_expires_at", as: Date.self),
                             document: try WireJSON.decode(JobDocument.self, from: try row.decode("document", as: String.self)))
        } catch let error as PostgresError where error.isUniqueViolation {
            // The device already holds a job (jobs_one_active_per_device_idx): nothing new for it now.
            return nil
        }
    }

    /// Gives a lease back (the long-poll that asked for it had already answered). The attempt number it carried
    /// is never handed out again (attempt numbers only rise); the budget gets the attempt back instead.
    package func unlease(job: UUID, attempt: Int) throws {
        try pool.query("""
            UPDATE jobs SET state = 'queued', attempt_base = attempt_base + 1, leased_at = NULL, lease_expires_at = NULL,
                   updated_at = now()
            WHERE id = \(job) AND attempt = \(attempt) AND state = 'leased'
            """)
    }

    package enum Touch: Equatable {
        case ok(leaseExpiresAt: Date)
        case notFound
        case leaseLost
    }

    /// Extends the lease (never past the attempt's timeout) and records progress, by the database's clock.
    package func heartbeat(job: UUID, device: UUID, attempt: Int, progress: [String: Double]?) throws -> Touch {
        let progressJSON = try progress.map(WireJSON.string)
        let rows = try pool.query("""
            UPDATE jobs SET state = 'running', progress = \(progressJSON)::jsonb, updated_at = now(),
                   lease_expires_at = least(now() + make_interval(secs => lease_s), leased_at + make_interval(secs => timeout_s))
            WHERE id = \(job) AND device_id = \(device) AND attempt = \(attempt)
              AND state IN ('leased', 'running') AND lease_expires_at >= now()
            RETURNING lease_expires_at
            """).rows
        if let row = rows.first { return .ok(leaseExpiresAt: try row.decode("lease_expires_at", as: Date.self)) }
        return try exists(job: job, device: device) ? .leaseLost : .notFound
    }

    package func exists(job: UUID, device: UUID) throws -> Bool {
        !(try pool.query("SELECT 1 FROM jobs WHERE id = \(job) AND device_id = \(device)").rows.isEmpty)
    }

    /// Whether `device` holds the job with that attempt. The row stays locked until `c`'s transaction ends, so the
    /// lease cannot expire and pass to a newer attempt while the caller writes for this one (an artifact of an old
    /// attempt can never land after a newer attempt took the job).
    package func holds(job: UUID, device: UUID, attempt: Int, on c: PostgresConnection) throws -> Bool {
        !(try c.query("""
            SELECT 1 FROM jobs WHERE id = \(job) AND device_id = \(device) AND attempt = \(attempt) AND state IN ('leased', 'running')
            FOR UPDATE
            """).rows.isEmpty)
    }

    /// The job document of a job of `device` (nil when the job is not this device's).
    package func document(job: UUID, device: UUID) throws -> JobDocument? {
        guard let row = try pool.query("SELECT document::text AS document FROM jobs WHERE id = \(job) AND device_id = \(device)").rows.first else {
            return nil
        }
        return try WireJSON.decode(JobDocument.self, from: try row.decode("document", as: String.self))
    }

    /// A job's kind and document, in the caller's transaction (its result being recorded).
    package func kindAndDocument(job: UUID, on c: PostgresConnection) throws -> (kind: JobKind, document: JobDocument)? {
        guard let row = try c.query("SELECT kind, document::text AS document FROM jobs WHERE id = \(job)").rows.first else { return nil }
        return (try row.decodeEnum("kind", as: JobKind.self),
                try WireJSON.decode(JobDocument.self, from: try row.decode("document", as: String.self)))
    }

    /// Locks a job's row for its follow-ups (`JobFollowups`) until the caller's transaction ends: waiting for a
    /// concurrent finisher, or (`wait` false) skipping a row another holds, which then reads as nil like a missing job.
    package func lockFollowups(job: UUID, wait: Bool, on c: PostgresConnection) throws -> (device: UUID, kind: JobKind, pending: Bool)? {
        let lock = wait ? "FOR UPDATE" : "FOR UPDATE SKIP LOCKED"
        guard let row = try c.query("""
            SELECT device_id, kind, followup_pending FROM jobs WHERE id = \(job) \(unsafeRaw: lock)
            """).rows.first else { return nil }
        return (try row.decode("device_id", as: UUID.self), try row.decodeEnum("kind", as: JobKind.self),
                try row.decode("followup_pending", as: Bool.self))
    }

    /// Marks a job's follow-ups done, in the transaction that did them.
    package func clearFollowups(job: UUID, on c: PostgresConnection) throws {
        try c.query("UPDATE jobs SET followup_pending = false WHERE id = \(job)")
    }

    /// Stamps the digest of the attempt's uploaded artifact on the job, in the caller's transaction.
    package func recordArtifact(job: UUID, sha256: [UInt8], now: Date, on c: PostgresConnection) throws {
        try c.query("UPDATE jobs SET artifact_sha256 = \(sha256), updated_at = \(now) WHERE id = \(job)")
    }

    package enum Completion: Equatable {
        case recorded(campaign: UUID, state: JobState)
        case replayed(campaign: UUID)
        case notFound
        case staleAttempt
    }

    /// Records an attempt's result. A failure with attempts left requeues the job with backoff; a success marks its
    /// follow-ups pending (see `JobFollowups`). `record` runs in the same transaction (the job's metrics), so a
    /// result and what it records commit together or not at all.
    /// A repeat of the recorded result for the same attempt is accepted again (idempotent);
    /// any result from another attempt, or for a job no longer held, is refused.
    package func complete(job: UUID, device: UUID, result: JobResult, backoff: Backoff,
                  record: (PostgresConnection, JobState) throws -> Void = { _, _ in }) throws -> Completion {
        let resultJSON = try WireJSON.string(result)
        return try pool.withTransaction { c in
            let rows = try c.query("""
                SELECT j.campaign_id, j.state, j.attempt, j.attempt_base, j.max_attempts, j.result::text AS result, j.kind,
                       (d.spec->'gate')::text AS gate,
                       (SELECT dv.latency_budget_ms FROM devices dv
                        WHERE dv.id = j.device_id AND EXISTS (SELECT 1 FROM releases r WHERE r.campaign_id = j.campaign_id)) AS release_budget_ms
                FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id JOIN domains d ON d.id = cp.domain_id
                WHERE j.id = \(job) AND j.device_id = \(device) FOR UPDATE OF j
                """).rows
            guard let row = rows.first else { return .notFound }
            let campaign = try row.decode("campaign_id", as: UUID.self)
            let state = try row.decodeEnum("state", as: JobState.self)
            let attempt = try row.decode("attempt", as: Int.self)
            let used = attempt - (try row.decode("attempt_base", as: Int.self))
            let maxAttempts = try row.decode("max_attempts", as: Int.self)
            guard attempt == result.attempt else { return .staleAttempt }
            if state == .leased || state == .running {
                if result.outcome == .succeeded {
                    // An adapt result is judged by its campaign's quality gate (the default one when the domain
                    // names none); one that fails it ends `rejected`: no follow-ups, so its adapters are neither
                    // aggregated nor planned into a config, and the campaign counts it as a failure.
                    // A release's `profile` result is judged by the release gate: the device's measured latency must
                    // be within its budget and the new model's served entropy must not rise past the gate's margin,
                    // else it ends `rejected` and the device keeps its model.
                    var verdictJSON: String?
                    let kind = try row.decodeEnum("kind", as: JobKind.self)
                    var judged: GateVerdict?
                    let gate = try row.decode("gate", as: String?.self).flatMap { try? WireJSON.decode(QualityGate.self, from: $0) } ?? QualityGate()
                    if kind == .adapt {
                        judged = gate.judge(result.metrics)
                    } else if kind == .profile, let budget = try row.decode("release_budget_ms", as: Double?.self) {
                        judged = ReleaseGate.judge(result, latencyBudgetMs: budget, gate: gate)
                    }
                    if let verdict = judged {
                        verdictJSON = try WireJSON.string(verdict)
                        if !verdict.passed {
                            try c.query("""
                                UPDATE jobs SET state = 'rejected', result = \(resultJSON)::jsonb, gate = \(verdictJSON)::jsonb,
                                       finished_at = now(), lease_expires_at = NULL, updated_at = now()
                                WHERE id = \(job)
                                """)
                            try record(c, .rejected)
                            return .recorded(campaign: campaign, state: .rejected)
                        }
                    }
                    try c.query("""
                        UPDATE jobs SET state = 'succeeded', result = \(resultJSON)::jsonb, gate = \(verdictJSON)::jsonb, finished_at = now(),
                               lease_expires_at = NULL, updated_at = now(), followup_pending = true
                        WHERE id = \(job)
                        """)
                    try record(c, .succeeded)
                    return .recorded(campaign: campaign, state: .succeeded)
                }
                let error: PostgresQuery = """
                    jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', \(unsafeRaw: Self.nowText), 'error', \(result.error ?? "failed")::text))
                    """
                if used < maxAttempts {
                    var q: PostgresQuery = """
                        UPDATE jobs SET state = 'queued', lease_expires_at = NULL, updated_at = now(),
                               run_after = now() + make_interval(secs => \(backoff.delay(attempt: used))), errors = errors ||
                        """
                    q.append(error)
                    q.append(" WHERE id = \(job)")
                    try c.query(q)
                    try record(c, .queued)
                    return .recorded(campaign: campaign, state: .queued)
                }
                var q: PostgresQuery = """
                    UPDATE jobs SET state = 'failed', result = \(resultJSON)::jsonb, finished_at = now(),
                           lease_expires_at = NULL, updated_at = now(), errors = errors ||
                    """
                q.append(error)
                q.append(" WHERE id = \(job)")
                try c.query(q)
                try record(c, .failed)
                return .recorded(campaign: campaign, state: .failed)
            }
            if state.isTerminal, let stored = try row.decode("result", as: String?.self),
               let storedResult = try? WireJSON.decode(JobResult.self, from: stored), storedResult == result {
                return .replayed(campaign: campaign)
            }
            return .staleAttempt
        }
    }

    /// Requeues (with backoff) or times out every job whose lease expired by the database's clock, and wakes the
    /// long-polls of the devices whose job is queued again (NOTIFY; the sweep stays the fallback).
    /// Returns the campaigns touched.
    package func rescueExpired(backoff: Backoff) throws -> Set<UUID> {
        try pool.withTransaction { c in
            // The expired leases, locked, with the attempts each used: every retry delay is `Backoff`'s (computed
            // here, per row), and the database adds it to its own clock.
            let expired = try c.query("""
                SELECT id, attempt - attempt_base AS used FROM jobs
                WHERE state IN ('leased', 'running') AND lease_expires_at < now()
                ORDER BY id FOR UPDATE
                """).rows
            guard !expired.isEmpty else { return [] }
            var ids: [UUID] = []
            var delays: [Double] = []
            for row in expired {
                ids.append(try row.decode("id", as: UUID.self))
                delays.append(backoff.delay(attempt: try row.decode("used", as: Int.self)))
            }
            let rows = try c.query("""
                UPDATE jobs SET
                    state = CASE WHEN attempt - attempt_base >= max_attempts THEN 'timed_out' ELSE 'queued' END,
                    finished_at = CASE WHEN attempt - attempt_base >= max_attempts THEN now() END,
                    run_after = now() + make_interval(secs => r.delay),
                    lease_expires_at = NULL, updated_at = now(),
                    errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', \(unsafeRaw: Self.nowText),
                                                                            'error', 'lease expired'))
                FROM unnest(\(PostgresArray(ids)), \(PostgresArray(delays))) AS r(id, delay)
                WHERE jobs.id = r.id AND jobs.state IN ('leased', 'running') AND jobs.lease_expires_at < now()
                RETURNING jobs.campaign_id, jobs.device_id, jobs.state
                """).rows
            var requeued: [UUID] = []
            var campaigns = Set<UUID>()
            for row in rows {
                campaigns.insert(try row.decode("campaign_id", as: UUID.self))
                if try row.decode("state", as: String.self) == JobState.queued.rawValue {
                    requeued.append(try row.decode("device_id", as: UUID.self))
                }
            }
            if !requeued.isEmpty {
                try c.query("""
                    SELECT pg_notify(\(Self.channel), d.id::text) FROM unnest(\(PostgresArray(requeued))) AS d(id)
                    """)
            }
            return campaigns
        }
    }

    /// Wakes the devices whose queued job became ready in (`since`, now] by the database's clock (a retry whose
    /// backoff ran out, a rescued job after its delay): NOTIFY, so their long-polls lease at once instead of at the
    /// next sweep. Returns the database's "now", the next call's `since`. A hint only: a job committed late into an
    /// earlier window is found by the sweep.
    package func notifyBecameReady(since: Date?) throws -> Date {
        try pool.query("""
            WITH ready AS (
                SELECT DISTINCT device_id FROM jobs
                WHERE state = 'queued' AND run_after <= now() AND run_after > COALESCE(\(since), now() - interval '1 second'))
            SELECT now() AS now, (SELECT count(*) FROM (SELECT pg_notify(\(Self.channel), device_id::text) FROM ready) AS n)::bigint AS woken
            """).rows[0].decode("now", as: Date.self)
    }

    /// Succeeded jobs whose follow-ups are still pending after `graceSeconds` (the result request normally
    /// finishes them at once), oldest first: what the maintenance loop finishes.
    package func pendingFollowups(graceSeconds: Double, limit: Int = 50) throws -> [(job: UUID, campaign: UUID)] {
        try pool.query("""
            SELECT id, campaign_id FROM jobs
            WHERE followup_pending AND finished_at < now() - make_interval(secs => \(graceSeconds))
            ORDER BY finished_at, id LIMIT \(limit)
            """).rows.map { (try $0.decode("id", as: UUID.self), try $0.decode("campaign_id", as: UUID.self)) }
    }

    /// Creates a campaign's jobs in the caller's transaction (the one that writes its domain and campaign): one COPY
    /// for the whole fleet, never a loop of INSERTs, then one NOTIFY wakes the pollers. Jobs are ready from the
    /// database's "now", not this replica's: leasing compares run_after with the database's clock, and a replica
    /// whose clock runs ahead must not hold its new jobs back.
    package func insertQueued(campaign campaignID: UUID, targets: [RolloutPlan.Target], maxAttempts: Int, timeoutS: Int, leaseS: Int,
                      on c: PostgresConnection) throws {
        let stamp = WireTimestamp.format(try c.query("SELECT now() AS now").rows[0].decode("now", as: Date.self))
        let campaign = campaignID.uuidString.lowercased()
        let encoder = WireJSON.encoder
        // Devices planned alike get equal documents (a document names no device), and equal values encode to equal
        // bytes (sorted keys): each distinct document is encoded once, not once per device.
        var encoded: [JobDocument: String] = [:]
        var rows: [[String?]] = []
        rows.reserveCapacity(targets.count)
        for t in targets {
            let document: String
            if let known = encoded[t.document] {
                document = known
            } else {
                document = String(decoding: try encoder.encode(t.document), as: UTF8.self)
                encoded[t.document] = document
            }
            rows.append([
                UUID().uuidString.lowercased(), campaign, t.deviceID.uuidString.lowercased(), t.document.kind.rawValue,
                String(t.wave), "queued", String(maxAttempts), String(timeoutS), String(leaseS),
                stamp, document, stamp, stamp,
            ])
        }
        let columns = ["id", "campaign_id", "device_id", "kind", "wave", "state", "max_attempts",
                       "timeout_s", "lease_s", "run_after", "document", "created_at", "updated_at"]
        _ = try c.copyIn(table: "jobs", columns: columns, rows: rows)
        try notifyAll(on: c)
    }

    /// Wakes every parked long-poll (a wave released, a campaign resumed or retried, jobs created).
    package func notifyAll(on c: PostgresConnection) throws {
        try c.query("SELECT pg_notify(\(Self.channel), '*')")
    }

    /// Job counts by state of the released waves (through `wave`) of a campaign, read under the campaign's lock for
    /// its evaluation. A success whose follow-ups (aggregation, re-plan) are still pending counts as
    /// `followup_pending`, i.e. open: the next wave may apply the aggregate those follow-ups fold.
    package func evaluationCounts(campaign: UUID, throughWave wave: Int, on c: PostgresConnection) throws -> [String: Int] {
        var byState: [String: Int] = [:]
        for r in try c.query("""
            SELECT CASE WHEN followup_pending THEN 'followup_pending' WHEN state IN ('rejected', 'canceled') THEN 'failed' ELSE state END AS state,
                   count(*)::bigint AS n
            FROM jobs WHERE campaign_id = \(campaign) AND wave <= \(wave) GROUP BY 1
            """).rows {
            byState[try r.decode("state", as: String.self)] = try r.decode("n", as: Int.self)
        }
        return byState
    }

    /// Cancels a campaign's queued jobs (it was aborted or canceled), in the caller's transaction.
    package func cancelQueued(campaign: UUID, now: Date, on c: PostgresConnection) throws {
        try c.query("""
            UPDATE jobs SET state = 'canceled', finished_at = \(now), updated_at = \(now)
            WHERE campaign_id = \(campaign) AND state = 'queued'
            """)
    }

    /// A campaign's jobs in id order after the cursor, optionally in one state: the operator's view.
    package func list(campaign: UUID, state: JobState?, limit: Int, after: UUID?) throws -> Page<CampaignJobView> {
        var q: PostgresQuery = """
            SELECT id, device_id, kind, wave, state, attempt, result::text AS result, gate::text AS gate, updated_at, finished_at
            FROM jobs WHERE campaign_id = \(campaign)
            """
        if let state { q.append(" AND state = \(state.rawValue)") }
        if let after { q.append(" AND id > \(after)") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let items = try pool.query(q).rows.map { row in
            let result = try row.decode("result", as: String?.self).flatMap { try? WireJSON.decode(JobResult.self, from: $0) }
            return CampaignJobView(
                id: try row.decode("id", as: UUID.self), deviceID: try row.decode("device_id", as: UUID.self),
                kind: try row.decodeEnum("kind", as: JobKind.self), wave: try row.decode("wave", as: Int.self),
                state: try row.decodeEnum("state", as: JobState.self), attempt: try row.decode("attempt", as: Int.self),
                outcome: result?.outcome.rawValue, error: result?.error, metrics: result?.metrics,
                gate: try row.decode("gate", as: String?.self).flatMap { try? WireJSON.decode(GateVerdict.self, from: $0) },
                updatedAt: try row.decode("updated_at", as: Date.self), finishedAt: try row.decode("finished_at", as: Date?.self))
        }
        let page = Array(items.prefix(limit))
        return Page(items: page, next: items.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    /// Holds a campaign's queued jobs until `until` (a release's `start_at`), in the caller's transaction.
    package func delayQueued(campaign: UUID, until: Date, on c: PostgresConnection) throws {
        try c.query("""
            UPDATE jobs SET run_after = GREATEST(run_after, \(until)) WHERE campaign_id = \(campaign) AND state = 'queued'
            """)
    }

    /// Cancels one device's queued jobs (benchmarks that reuse a device for the next trial).
    package func cancelQueued(device: UUID) throws {
        try pool.query("UPDATE jobs SET state = 'canceled', finished_at = now() WHERE device_id = \(device) AND state = 'queued'")
    }

    /// Queues a campaign's failed and timed-out jobs again with a fresh budget of max_attempts from the attempt
    /// reached: the attempt number itself only rises, so a worker of an earlier attempt can never heartbeat or report
    /// onto the retry. Returns the jobs requeued.
    package func retryFailed(campaign: UUID, on c: PostgresConnection) throws -> Int {
        try c.query("""
            UPDATE jobs SET state = 'queued', attempt_base = attempt, run_after = now(), finished_at = NULL, result = NULL,
                   updated_at = now()
            WHERE campaign_id = \(campaign) AND state IN ('failed', 'timed_out')
            """).affectedRows
    }

    /// The mean accuracy gain and entropy reduction of succeeded `adapt` jobs, and the devices they adapted.
    package func adaptationGains() throws -> (meanAccuracyGain: Double?, meanEntropyReduction: Double?, adaptedDevices: Int) {
        let row = try pool.query("""
            SELECT avg((result->'metrics'->>'accuracy_after')::float8 - (result->'metrics'->>'accuracy_before')::float8) AS acc,
                   avg((result->'metrics'->>'entropy_before')::float8 - (result->'metrics'->>'entropy_after')::float8) AS ent,
                   count(DISTINCT device_id)::bigint AS n
            FROM jobs WHERE state = 'succeeded' AND kind = 'adapt'
            """).rows[0]
        return (try row.decode("acc", as: Double?.self), try row.decode("ent", as: Double?.self), try row.decode("n", as: Int.self))
    }

    /// The cost of the bare write a campaign's fan-out does: every job's (id, device, document) read back and written
    /// again with one raw COPY into a temporary table (no planning, no HTTP, no JSON). Returns the COPY's duration.
    package func copyBaseline() throws -> Duration {
        let rows: [[String?]] = try pool.query("SELECT id::text, device_id::text, document::text FROM jobs").rows.map {
            [try $0.decode("id", as: String.self), try $0.decode("device_id", as: String.self), try $0.decode("document", as: String.self)]
        }
        return try pool.withConnection { c -> Duration in
            try c.query("CREATE TEMP TABLE IF NOT EXISTS jobs_copy (id uuid, device_id uuid, document jsonb)")
            try c.query("TRUNCATE jobs_copy")
            let t = ContinuousClock.now
            _ = try c.copyIn(table: "jobs_copy", columns: ["id", "device_id", "document"], rows: rows)
            return ContinuousClock.now - t
        }
    }

    /// Job counts by state, for the queue-depth gauge and the fleet summary.
    package func countsByState() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try pool.query("SELECT state, count(*)::bigint AS n FROM jobs GROUP BY state").rows {
            out[try row.decode("state", as: String.self)] = try row.decode("n", as: Int.self)
        }
        return out
    }

    /// For each device, the domain and kind of its newest succeeded `adapt` or `apply` job: which adapters it runs.
    /// Each device's newest succeeded `adapt` or `apply` for a domain of the model it is planned with (`models`):
    /// adapters trained for another model never reach a config of this one.
    package func lastAdaptations(_ models: [UUID: UUID], on c: PostgresConnection) throws -> [UUID: (domain: UUID, kind: JobKind)] {
        guard !models.isEmpty else { return [:] }
        let devices = Array(models.keys), modelIDs = devices.map { models[$0]! }
        var out: [UUID: (domain: UUID, kind: JobKind)] = [:]
        for row in try c.query("""
            SELECT DISTINCT ON (j.device_id) j.device_id, cp.domain_id, j.kind
            FROM unnest(\(PostgresArray(devices))::uuid[], \(PostgresArray(modelIDs))::uuid[]) AS t(device_id, model_id)
            JOIN jobs j ON j.device_id = t.device_id
            JOIN campaigns cp ON cp.id = j.campaign_id AND cp.status NOT IN ('rolling_back', 'rolled_back')
            JOIN domains dm ON dm.id = cp.domain_id AND dm.model_id = t.model_id
            WHERE j.state = 'succeeded' AND j.kind IN ('adapt', 'apply')
            ORDER BY j.device_id, j.finished_at DESC, j.id
            """).rows {
            out[try row.decode("device_id", as: UUID.self)] = (try row.decode("domain_id", as: UUID.self), try row.decodeEnum("kind", as: JobKind.self))
        }
        return out
    }

    package func kind(ofJob job: UUID) throws -> JobKind? {
        try pool.query("SELECT kind FROM jobs WHERE id = \(job)").rows.first.map { try $0.decodeEnum("kind", as: JobKind.self) }
    }

    package func domain(ofJob job: UUID) throws -> UUID? {
        try pool.query("SELECT cp.domain_id FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id WHERE j.id = \(job)")
            .rows.first?.decode("domain_id", as: UUID.self)
    }

    /// Whether `device` has a job in `domain`'s campaign (it is one of the domain's targets).
    package func hasJob(inDomain domain: UUID, device: UUID) throws -> Bool {
        !(try pool.query("""
            SELECT 1 FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id
            WHERE cp.domain_id = \(domain) AND j.device_id = \(device) LIMIT 1
            """).rows.isEmpty)
    }

    /// Devices whose newest succeeded adaptation in `domain` applied the aggregated adapters.
    package func devicesApplyingAggregate(domain: UUID) throws -> [UUID] {
        try pool.query("""
            SELECT DISTINCT j.device_id FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id
            WHERE cp.domain_id = \(domain) AND j.state = 'succeeded' AND j.kind = 'apply'
            """).rows.map { try $0.decode("device_id", as: UUID.self) }
    }
}
