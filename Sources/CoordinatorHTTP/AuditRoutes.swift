import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// `GET /v1/audit` (admin): the audit log, newest first, with filters and a cursor.
package struct AuditRoutes: Sendable {
    package let routes: RouteRegistrar
    package let audit: AuditStore

    package func register() {
        routes.add(.GET, "/v1/audit", access: .admin, list)
    }

    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let query = try ListQuery(request, cursorIsUUID: false)
        func bad(_ field: String, _ message: String) -> HTTPError {
            HTTPError.badRequest("\(field) \(message).", code: "invalid_parameter", errors: [FieldError(field: field, message: message)])
        }
        var after: Int64?
        if let text = request.query["after"] {
            guard let n = Int64(text), n > 0 else { throw bad("after", "must be a cursor returned as `next`") }
            after = n
        }
        func time(_ name: String) throws -> Date? {
            guard let text = request.query[name] else { return nil }
            guard let date = WireTimestamp.parse(text) else { throw bad(name, "must be an RFC 3339 timestamp") }
            return date
        }
        var filter = AuditStore.Filter(actor: request.query["actor"], route: request.query["route"],
                                       since: try time("since"), until: try time("until"))
        if let text = request.query["status"] {
            guard let n = Int(text), (100...599).contains(n) else { throw bad("status", "must be an HTTP status code") }
            filter.status = n
        }
        return try .body(try audit.list(filter, limit: query.limit, after: after))
    }
}
