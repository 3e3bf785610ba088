import FleetAPI
import Foundation
import HTTPServer

/// Registers a route group's handlers on the router, each wrapped with what every route shares: who may call it
/// (decided from the headers before the body is read), database errors mapped to problems, and metrics.
package struct RouteRegistrar: Sendable {
    package let router: Router
    package let auth: Authenticator
    package let metrics: Metrics

    package init(router: Router, auth: Authenticator, metrics: Metrics) {
        self.router = router
        self.auth = auth
        self.metrics = metrics
    }

    package func add(_ method: HTTPMethod, _ pattern: String, access: Access, options: RouteOptions = .init(),
             _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        let metrics = self.metrics
        var options = options
        options.authorize = authorizer(access)
        router.add(method, pattern, options: options) { request in
            let start = ContinuousClock.now
            var status = 500
            defer {
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                metrics.observe(method: method.rawValue, route: pattern, status: status, seconds: seconds)
            }
            do {
                let response = try mapDatabaseErrors(request.requestID) { try handler(request) }
                status = response.status
                return response
            } catch let error as HTTPError {
                status = error.status
                throw error
            }
        }
    }

    /// `Authenticator.authorizer` with database errors mapped to problems, as in handlers.
    package func authorizer(_ access: Access) -> RequestAuthorizer? {
        guard let check = auth.authorizer(access) else { return nil }
        return { request in try mapDatabaseErrors(request.requestID) { try check(request) } }
    }
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
