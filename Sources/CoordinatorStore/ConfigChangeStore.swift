import Foundation
import PostgresClient

/// SQL for `campaign_config_changes`: per campaign and device, the config version the campaign replaced, and what a
/// rollback restored. It is the rollback's memory, in the database so that a restart forgets nothing.
package struct ConfigChangeStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Records that `campaign` is about to change `device`, whose current config is `replacedVersion` (nil: none),
    /// in the caller's transaction (the one finishing the job's follow-ups). The first record of a device stands.
    package func recordReplaced(campaign: UUID, device: UUID, replacedVersion: Int?, now: Date, on c: PostgresConnection) throws {
        try c.query("""
            INSERT INTO campaign_config_changes (campaign_id, device_id, replaced_version, changed_at)
            VALUES (\(campaign), \(device), \(replacedVersion), \(now))
            ON CONFLICT (campaign_id, device_id) DO NOTHING
            """)
    }

    /// Devices of `campaign` that a rollback has yet to restore, in id order after `after`.
    package func pending(campaign: UUID, after: UUID?, limit: Int) throws -> [(device: UUID, replacedVersion: Int?)] {
        var q: PostgresQuery = "SELECT device_id, replaced_version FROM campaign_config_changes WHERE campaign_id = \(campaign) AND restored_at IS NULL"
        if let after { q.append(" AND device_id > \(after)") }
        q.append(" ORDER BY device_id LIMIT \(limit)")
        return try pool.query(q).rows.map { (try $0.decode("device_id", as: UUID.self), try $0.decode("replaced_version", as: Int?.self)) }
    }

    /// Locks one device's row and says whether it is still to restore, in the caller's transaction.
    package func lockPending(campaign: UUID, device: UUID, on c: PostgresConnection) throws -> Bool {
        !(try c.query("""
            SELECT 1 FROM campaign_config_changes WHERE campaign_id = \(campaign) AND device_id = \(device) AND restored_at IS NULL FOR UPDATE
            """).rows.isEmpty)
    }

    /// Marks a device restored (to `version`, written by the rollback or already current), in the caller's transaction.
    package func markRestored(campaign: UUID, device: UUID, version: Int?, written: Bool, now: Date, on c: PostgresConnection) throws {
        try c.query("""
            UPDATE campaign_config_changes SET restored_version = \(version), restored_written = \(written), restored_at = \(now)
            WHERE campaign_id = \(campaign) AND device_id = \(device)
            """)
    }

    /// Counts over a campaign's changed devices: all, restored with a new version, restored without one, pending.
    package func summary(campaign: UUID, on c: PostgresConnection? = nil) throws -> (changed: Int, restored: Int, unchanged: Int, pending: Int) {
        let q: PostgresQuery = """
            SELECT count(*)::bigint AS changed,
                   count(*) FILTER (WHERE restored_written)::bigint AS restored,
                   count(*) FILTER (WHERE restored_at IS NOT NULL AND NOT restored_written)::bigint AS unchanged,
                   count(*) FILTER (WHERE restored_at IS NULL)::bigint AS pending
            FROM campaign_config_changes WHERE campaign_id = \(campaign)
            """
        let row = try (c.map { try $0.query(q) } ?? pool.query(q)).rows[0]
        return (try row.decode("changed", as: Int.self), try row.decode("restored", as: Int.self),
                try row.decode("unchanged", as: Int.self), try row.decode("pending", as: Int.self))
    }
}
