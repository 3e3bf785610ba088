import FleetAPI
import Foundation
import HTTPServer
import Synchronization

/// Registers a route group's handlers on the router, each wrapped with what every route shares: who may call it
/// (decided from the headers before the body is read, and remembered in `accessTable` for the contract test),
/// database errors mapped to problems, metrics, and the audit log (`Auditor`: every mutating request and every
/// refused credential, recorded here once the status is known, never in a route).
package struct RouteRegistrar: Sendable {
    package let router: Router
    package let auth: Authenticator
    package let metrics: Metrics
    package let auditor: Auditor?
    package let accessTable: RouteAccessTable

    package init(router: Router, auth: Authenticator, metrics: Metrics, auditor: Auditor? = nil,
                 accessTable: RouteAccessTable = RouteAccessTable()) {
        self.router = router
        self.auth = auth
        self.metrics = metrics
        self.auditor = auditor
        self.accessTable = accessTable
    }

    package func add(_ method: HTTPMethod, _ pattern: String, access: Access, options: RouteOptions = .init(),
             _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        let metrics = self.metrics
        let auditor = self.auditor
        var options = options
        let check = authorizer(access, method: method, pattern: pattern)
        options.authorize = check
        router.add(method, pattern, options: options) { request in
            let start = ContinuousClock.now
            var status = 500
            var request = request
            var location: String?
            defer {
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                metrics.observe(method: method.rawValue, route: pattern, status: status, seconds: seconds)
                auditor?.requestDone(request, access: access, method: method, route: pattern, status: status, location: location)
            }
            do {
                // The server ran `check` before the body; a caller that bypassed it (none does) is checked here.
                if let check, request.authorization == nil {
                    let found = try mapDatabaseErrors(request.requestID) { [request] in try check(request) }
                    request.authorization = found
                }
                let response = try mapDatabaseErrors(request.requestID) { try handler(request) }
                status = response.status
                location = response.headers["Location"]
                return response
            } catch let error as HTTPError {
                status = error.status
                throw error
            }
        }
    }

    /// `Authenticator.authorizer` with database errors mapped to problems, as in handlers, and refusals audited;
    /// routes registered on the router directly (long-polls) pass their method and pattern here.
    package func authorizer(_ access: Access, method: HTTPMethod, pattern: String) -> RequestAuthorizer? {
        accessTable.record(method, pattern, access)
        // Query parameters the operation does not declare are refused first (the allow-list is the public
        // contract, so answering before the credential is checked tells nothing).
        let allowed = QueryAllowList.bundled.parameters(method, pattern)
        guard let check = auth.authorizer(access) else {
            guard let allowed else { return nil }
            return { request in
                try QueryAllowList.check(request, allowed: allowed)
                return nil
            }
        }
        let auditor = self.auditor
        return { request in
            if let allowed { try QueryAllowList.check(request, allowed: allowed) }
            do {
                return try mapDatabaseErrors(request.requestID) { try check(request) }
            } catch let error as HTTPError {
                if [401, 403].contains(error.status) {
                    auditor?.refused(request, method: method, route: pattern, status: error.status)
                }
                throw error
            }
        }
    }
}

/// The access each (method, pattern) was registered with, for the test that holds openapi.yaml's
/// `x-required-role` equal to the routes.
package final class RouteAccessTable: Sendable {
    private let table = Mutex<[String: Access]>([:])

    package init() {}

    func record(_ method: HTTPMethod, _ pattern: String, _ access: Access) {
        table.withLock { $0["\(method.rawValue) \(pattern)"] = access }
    }

    /// "METHOD /pattern" → access.
    package var entries: [String: Access] { table.withLock { $0 } }
}

extension HTTPResponse {
    /// JSON in the wire format (`FleetAPI.WireJSON`: sorted keys, microsecond RFC 3339 timestamps, lower-case UUIDs).
    package static func body<T: Encodable>(_ value: T, status: Int = 200, headers: HTTPHeaders = .init()) throws -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: try WireJSON.bytes(value))
    }
}

extension HTTPRequest {
    /// Decodes a JSON body with the wire decoder (`WireJSON`, the coder of every answer too), then validates it;
    /// every failure is a 4xx problem naming the field.
    package func decodeValidated<T: Decodable>(_ type: T.Type, validate: (T) -> [ValidationIssue]) throws -> T {
        let value = try decodeJSON(type, using: WireJSON.decoder)
        let issues = validate(value)
        if !issues.isEmpty {
            throw HTTPError.validation(issues.map { FieldError(field: $0.field, message: $0.message) })
        }
        return value
    }

    /// A UUID path parameter; anything else is a 400 naming the parameter, never a 404 or a 500.
    package func uuidParameter(_ name: String) throws -> UUID {
        guard let text = pathParameters[name], let id = UUID(uuidString: text) else {
            throw HTTPError.badRequest("'\(pathParameters[name] ?? "")' is not a UUID.", code: "invalid_parameter",
                                       errors: [FieldError(field: name, message: "must be a UUID")])
        }
        return id
    }
}
