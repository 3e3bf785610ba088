import FleetAPI
import Foundation
import PostgresClient

/// SQL for `device_drift`: each device's latest drift report and the state judged from it.
package struct DriftStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Reports older than this no longer count for triggers (a device that stopped reporting is not drifting now).
    package static let freshSeconds = 600.0

    /// Keeps `report` as the device's latest, in `state`; `since` moves only when the state changes. Returns the
    /// stored drift and whether the state changed (a first report counts as a change).
    package func record(_ device: UUID, report: DriftReport, state: DeviceDrift.State, now: Date) throws -> (drift: DeviceDrift, changed: Bool) {
        let row = try pool.query("""
            WITH previous AS (SELECT state FROM device_drift WHERE device_id = \(device))
            INSERT INTO device_drift AS d (device_id, state, state_since, report, entropy_rise, confidence_drop, reported_at)
            VALUES (\(device), \(state.rawValue), \(now), \(try WireJSON.string(report))::jsonb, \(report.entropyRise), \(report.confidenceDrop), \(now))
            ON CONFLICT (device_id) DO UPDATE SET
                state = EXCLUDED.state,
                state_since = CASE WHEN d.state = EXCLUDED.state THEN d.state_since ELSE EXCLUDED.state_since END,
                report = EXCLUDED.report, entropy_rise = EXCLUDED.entropy_rise, confidence_drop = EXCLUDED.confidence_drop,
                reported_at = EXCLUDED.reported_at, reports = d.reports + 1
            RETURNING d.state, d.state_since, d.report::text AS report, d.reported_at, (SELECT state FROM previous) AS previous
            """).rows[0]
        let drift = try Self.decode(row)
        return (drift, try row.decode("previous", as: String?.self) != state.rawValue)
    }

    package func find(_ device: UUID) throws -> DeviceDrift? {
        try pool.query("""
            SELECT state, state_since, report::text AS report, reported_at FROM device_drift WHERE device_id = \(device)
            """).rows.first.map(Self.decode)
    }

    /// Active devices by drift state: `ok`, `drifting`, and `unknown` for those that never reported.
    package func countsByState() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try pool.query("""
            SELECT COALESCE(dd.state, 'unknown') AS k, count(*)::bigint AS n
            FROM devices d LEFT JOIN device_drift dd ON dd.device_id = d.id WHERE d.status = 'active' GROUP BY 1
            """).rows {
            out[try row.decode("k", as: String.self)] = try row.decode("n", as: Int.self)
        }
        return out
    }

    /// Among the active devices a selector matches: how many there are, and those whose report since `freshSince`
    /// has `metric` at or above `threshold` (in id order, at most `limit`).
    package func beyond(labels: [String: String]?, ids: [UUID]?, metric: TriggerCondition.Metric, threshold: Double, freshSince: Date,
                        limit: Int = DomainRequest.maxDeviceIDs) throws -> (matching: Int, beyond: [UUID]) {
        // The column is one of two fixed names, never input.
        let column = metric == .entropyRise ? "dd.entropy_rise" : "dd.confidence_drop"
        var scope: PostgresQuery = "FROM devices d LEFT JOIN device_drift dd ON dd.device_id = d.id WHERE d.status = 'active'"
        if let labels, !labels.isEmpty { scope.append(" AND d.labels @> \(try WireJSON.string(labels))::jsonb") }
        if let ids { scope.append(" AND d.id = ANY(\(PostgresArray(ids)))") }
        return try pool.withConnection { c in
            var count: PostgresQuery = "SELECT count(*)::bigint AS n "
            count.append(scope)
            let matching = try c.query(count).rows[0].decode("n", as: Int.self)
            var list: PostgresQuery = "SELECT d.id "
            list.append(scope)
            list.append(" AND dd.reported_at >= \(freshSince) AND \(unsafeRaw: column) >= \(threshold) ORDER BY d.id LIMIT \(limit)")
            return (matching, try c.query(list).rows.map { try $0.decode("id", as: UUID.self) })
        }
    }

    static func decode(_ row: PostgresRow) throws -> DeviceDrift {
        DeviceDrift(state: try row.decodeEnum("state", as: DeviceDrift.State.self), since: try row.decode("state_since", as: Date.self),
                    reportedAt: try row.decode("reported_at", as: Date.self),
                    report: try WireJSON.decode(DriftReport.self, from: try row.decode("report", as: String.self)))
    }
}
