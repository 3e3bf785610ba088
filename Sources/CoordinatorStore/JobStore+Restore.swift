import FleetAPI
import Foundation
import PostgresClient

/// The jobs table's part in a rollback's last step: one `restore` job per device a rolled-back campaign changed (the
/// agent re-applies its previous config and adapters and reports it), and the counts that say when that is done.
extension JobStore {
    /// SQL over a restore job `j`: the config version it puts back is still the device's newest (a restore whose
    /// device has moved past it would put back a config the device no longer has). Leasing and retries both ask it.
    static let restoreIsCurrent = """
        (j.document->'restore'->>'config_version')::int
            >= (SELECT coalesce(max(v.version), 0) FROM device_configs v WHERE v.device_id = j.device_id)
        """

    /// Queues `device`'s `restore` job in `campaign` unless it has one, in the caller's transaction (the one that
    /// marks the device restored, so a rollback finished again never queues a second: the database's
    /// `jobs_campaign_restore_idx` holds it too). Its budget, timeout and lease are those of the campaign's jobs, its
    /// wave that of the device's job there; the device's long-poll is woken. Returns whether a job was queued.
    @discardableResult
    package func queueRestore(campaign: UUID, device: UUID, document: JobDocument, now: Date, on c: PostgresConnection) throws -> Bool {
        let json = try WireJSON.string(document)
        let inserted = try c.query("""
            INSERT INTO jobs (id, campaign_id, device_id, kind, wave, state, max_attempts, timeout_s, lease_s, run_after, document,
                              created_at, updated_at)
            SELECT \(UUID()), j.campaign_id, j.device_id, 'restore', j.wave, 'queued', j.max_attempts, j.timeout_s, j.lease_s, now(),
                   \(json)::jsonb, \(now), \(now)
            FROM jobs j WHERE j.campaign_id = \(campaign) AND j.device_id = \(device) AND j.kind <> 'restore'
            ON CONFLICT (campaign_id, device_id) WHERE kind = 'restore' DO NOTHING
            """).affectedRows
        if inserted > 0 { try c.query("SELECT pg_notify(\(Self.channel), \(device.uuidString.lowercased()))") }
        return inserted > 0
    }

    /// The document of `device`'s own (non-restore) job in `campaign`: what its restore job copies its domain from.
    package func document(campaign: UUID, device: UUID, on c: PostgresConnection) throws -> JobDocument? {
        guard let row = try c.query("""
            SELECT document::text AS document FROM jobs WHERE campaign_id = \(campaign) AND device_id = \(device) AND kind <> 'restore'
            """).rows.first else { return nil }
        return try WireJSON.decode(JobDocument.self, from: try row.decode("document", as: String.self))
    }

    /// A campaign's restore jobs: still open, succeeded, and ended otherwise (failed, timed out, canceled); of the open
    /// ones, how many have waited in the queue, untaken, since before `overdueBefore` (their devices are offline).
    package func restoreCounts(campaign: UUID, overdueBefore: Date? = nil, on c: PostgresConnection? = nil) throws
        -> (open: Int, succeeded: Int, failed: Int, overdue: Int) {
        let q: PostgresQuery = """
            SELECT count(*) FILTER (WHERE state IN ('queued', 'leased', 'running'))::bigint AS open,
                   count(*) FILTER (WHERE state = 'succeeded')::bigint AS succeeded,
                   count(*) FILTER (WHERE state IN ('failed', 'timed_out', 'canceled', 'rejected'))::bigint AS failed,
                   count(*) FILTER (WHERE state = 'queued' AND updated_at < \(overdueBefore ?? .distantPast))::bigint AS overdue
            FROM jobs WHERE campaign_id = \(campaign) AND kind = 'restore'
            """
        let row = try (c.map { try $0.query(q) } ?? pool.query(q)).rows[0]
        return (try row.decode("open", as: Int.self), try row.decode("succeeded", as: Int.self), try row.decode("failed", as: Int.self),
                try row.decode("overdue", as: Int.self))
    }

    /// Puts a campaign's ended, unsuccessful restore jobs (failed, timed out, canceled) back in the queue with a fresh
    /// attempt budget, in the caller's transaction, and wakes their devices: an operator's repeated rollback retries
    /// them. A restore whose device has meanwhile moved past the restored config version is left as it is (it would
    /// put back a config the device no longer has). Returns how many were re-queued.
    package func retryRestores(campaign: UUID, now: Date, on c: PostgresConnection) throws -> Int {
        let rows = try c.query("""
            UPDATE jobs j SET state = 'queued', attempt_base = j.attempt, run_after = now(), finished_at = NULL, result = NULL,
                   progress = NULL, updated_at = \(now)
            WHERE j.campaign_id = \(campaign) AND j.kind = 'restore' AND j.state IN ('failed', 'timed_out', 'canceled')
              AND \(unsafeRaw: Self.restoreIsCurrent)
            RETURNING j.device_id
            """).rows
        for row in rows { try c.query("SELECT pg_notify(\(Self.channel), \(try row.decode("device_id", as: UUID.self).uuidString.lowercased()))") }
        return rows.count
    }

    /// `device`'s restore job `job` while an attempt of it holds the lease: its document (nil: no such job of this
    /// device), and whether it is held now (a download outside the lease is refused).
    package func restoreJob(_ job: UUID, device: UUID) throws -> (document: JobDocument, held: Bool)? {
        guard let row = try pool.query("""
            SELECT document::text AS document, state IN ('leased', 'running') AS held FROM jobs
            WHERE id = \(job) AND device_id = \(device) AND kind = 'restore'
            """).rows.first else { return nil }
        return (try WireJSON.decode(JobDocument.self, from: try row.decode("document", as: String.self)), try row.decode("held", as: Bool.self))
    }
}
