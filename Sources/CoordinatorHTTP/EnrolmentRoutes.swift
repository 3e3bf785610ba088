import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Device credentials without pasting tokens: enrolment tokens (operator), a device enrolling itself with one, and
/// rotating a device's token.
package struct EnrolmentRoutes: Sendable {
    package let routes: RouteRegistrar
    package let tokens: EnrolmentTokenStore
    package let enrollment: DeviceEnrollment
    package let clock: WallClock

    package func register() {
        routes.add(.POST, "/v1/enrolment-tokens", access: .operator, create)
        routes.add(.GET, "/v1/enrolment-tokens", access: .operator, list)
        routes.add(.POST, "/v1/enrolment-tokens/{id}/revoke", access: .operator, revoke)
        routes.add(.POST, "/v1/agent/enrol", access: .enrolment, enrol)
        routes.add(.POST, "/v1/devices/{id}/token", access: .operator, rotate)
    }

    package func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let now = clock.now()
        let body = try request.decodeValidated(EnrolmentTokenRequest.self) { $0.validate(now: now) }
        let token = Secrets.generate(prefix: Authenticator.enrolmentTokenPrefix)
        let view = try tokens.insert(id: UUID(), labels: body.labels ?? [:], tokenDigest: Secrets.sha256(token),
                                     expiresAt: body.expiresAt!, maxUses: body.maxUses, now: now)
        var headers = HTTPHeaders()
        headers.set("Location", "/v1/enrolment-tokens/\(view.id.uuidString.lowercased())")
        headers.set("Cache-Control", "no-store")
        return try .body(EnrolmentTokenCreated(enrolmentToken: view, token: token), status: 201, headers: headers)
    }

    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let query = try ListQuery(request)
        return try .body(try tokens.list(limit: query.limit, after: query.after))
    }

    package func revoke(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard let view = try tokens.revoke(id, now: clock.now()) else {
            throw HTTPError.notFound("No enrolment token \(id.uuidString.lowercased()).")
        }
        return try .body(view)
    }

    /// A device registers itself: the body is a registration without labels (the token's labels are the device's).
    package func enrol(_ request: HTTPRequest) throws -> HTTPResponse {
        let credential = try routes.auth.requireEnrolmentToken(request)
        let registration = try request.decodeValidated(DeviceRegistration.self) { r in
            var issues = r.validate()
            if r.labels != nil { issues.append(ValidationIssue(field: "labels", message: "are set by the enrolment token; leave them out")) }
            return issues
        }
        guard let created = try enrollment.enrol(registration, enrolmentToken: credential.id, tokens: tokens, now: clock.now()) else {
            throw HTTPError(status: 401, code: "enrolment_token_used_up",
                            detail: "This enrolment token can no longer be used.", headers: ["WWW-Authenticate": "Bearer"])
        }
        var headers = HTTPHeaders()
        headers.set("Location", "/v1/devices/\(created.device.id.uuidString.lowercased())")
        headers.set("Cache-Control", "no-store")
        return try .body(created, status: 201, headers: headers)
    }

    /// A new token for the device; the old one is refused from this moment.
    package func rotate(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard let token = try enrollment.rotateToken(id, now: clock.now()) else {
            throw HTTPError.notFound("No active device \(id.uuidString.lowercased()).")
        }
        var headers = HTTPHeaders()
        headers.set("Cache-Control", "no-store")
        return try .body(DeviceToken(token: token), headers: headers)
    }
}
