import FleetAPI
import Foundation
import PostgresClient

/// SQL for `audit_log`, which is append-only (a trigger refuses UPDATE, DELETE and TRUNCATE): rows are inserted
/// and read, never changed.
package struct AuditStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// What one audited request did; the row's time is the database's.
    package struct Record: Sendable {
        package var actorKind: String
        package var actorID: String?
        package var actorName: String?
        package var method: String
        package var route: String
        package var resourceID: String?
        package var status: Int
        package var requestID: String
        package var clientAddress: String?

        package init(actorKind: String, actorID: String?, actorName: String?, method: String, route: String, resourceID: String?,
                     status: Int, requestID: String, clientAddress: String?) {
            self.actorKind = actorKind
            self.actorID = actorID
            self.actorName = actorName
            self.method = method
            self.route = route
            self.resourceID = resourceID
            self.status = status
            self.requestID = requestID
            self.clientAddress = clientAddress
        }
    }

    package func append(_ r: Record) throws {
        try pool.query("""
            INSERT INTO audit_log (actor_kind, actor_id, actor_name, method, route, resource_id, status, request_id, client_address)
            VALUES (\(r.actorKind), \(r.actorID), \(r.actorName), \(r.method), \(r.route), \(r.resourceID), \(r.status),
                    \(r.requestID), \(r.clientAddress))
            """)
    }

    package struct Filter: Sendable {
        package var actor: String?
        package var route: String?
        package var since: Date?
        package var until: Date?
        package var status: Int?

        package init(actor: String? = nil, route: String? = nil, since: Date? = nil, until: Date? = nil, status: Int? = nil) {
            self.actor = actor
            self.route = route
            self.since = since
            self.until = until
            self.status = status
        }
    }

    /// Newest first; `after` is the `next` of the previous page (an entry id).
    package func list(_ f: Filter, limit: Int, after: Int64?) throws -> Page<AuditEntry> {
        var q: PostgresQuery = """
            SELECT id, at, actor_kind, actor_id, actor_name, method, route, resource_id, status, request_id, client_address
            FROM audit_log WHERE true
            """
        if let after { q.append(" AND id < \(after)") }
        if let actor = f.actor { q.append(" AND (actor_id = \(actor) OR actor_kind = \(actor))") }
        if let route = f.route { q.append(" AND route = \(route)") }
        if let since = f.since { q.append(" AND at >= \(since)") }
        if let until = f.until { q.append(" AND at < \(until)") }
        if let status = f.status { q.append(" AND status = \(status)") }
        q.append(" ORDER BY id DESC LIMIT \(limit + 1)")
        let entries = try pool.query(q).rows.map { row in
            AuditEntry(id: try row.decode("id", as: Int64.self), at: try row.decode("at", as: Date.self),
                       actorKind: try row.decode("actor_kind", as: String.self), actorID: try row.decode("actor_id", as: String?.self),
                       actorName: try row.decode("actor_name", as: String?.self), method: try row.decode("method", as: String.self),
                       route: try row.decode("route", as: String.self), resourceID: try row.decode("resource_id", as: String?.self),
                       status: try row.decode("status", as: Int.self), requestID: try row.decode("request_id", as: String.self),
                       clientAddress: try row.decode("client_address", as: String?.self))
        }
        let page = Array(entries.prefix(limit))
        return Page(items: page, next: entries.count > limit ? page.last.map { String($0.id) } : nil)
    }
}
