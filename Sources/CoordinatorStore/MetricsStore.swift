import FleetAPI
import Foundation
import PostgresClient

/// SQL for `device_metrics`, the per-device time series.
package struct MetricsStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package func record(device: UUID, kind: String, job: UUID?, values: [String: Double], now: Date, on c: PostgresConnection? = nil) throws {
        let q: PostgresQuery = """
            INSERT INTO device_metrics (device_id, kind, job_id, "values", recorded_at)
            VALUES (\(device), \(kind), \(job), \(try WireJSON.string(values))::jsonb, \(now))
            """
        if let c { try c.query(q) } else { try pool.query(q) }
    }

    /// Oldest first, keyset-paginated by the identity column; `after` is the last id seen.
    package func series(device: UUID, kind: String?, limit: Int, after: Int?) throws -> Page<MetricPoint> {
        var q: PostgresQuery = """
            SELECT id, kind, job_id, "values"::text AS vals, recorded_at FROM device_metrics WHERE device_id = \(device)
            """
        if let kind { q.append(" AND kind = \(kind)") }
        if let after { q.append(" AND id > \(after)") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let points = try pool.query(q).rows.map { row in
            MetricPoint(id: try row.decode("id", as: Int.self), kind: try row.decode("kind", as: String.self),
                        jobID: try row.decode("job_id", as: UUID?.self),
                        values: try WireJSON.decode([String: Double].self, from: try row.decode("vals", as: String.self)),
                        recordedAt: try row.decode("recorded_at", as: Date.self))
        }
        let page = Array(points.prefix(limit))
        return Page(items: page, next: points.count > limit ? page.last.map { String($0.id) } : nil)
    }
}
