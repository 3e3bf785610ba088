import CoordinatorDomain
import CoordinatorStore
import Foundation
import HTTPServer

/// Who may call a route. Declared with every route (`RouteRegistrar.add`), and decided from the headers before the
/// server reads the body.
package enum Access: Sendable {
    case admin
    case device
    /// The admin key or any active device's token (e.g. model package downloads).
    case adminOrDevice
    /// No credential (probes, the contract).
    case open
}

/// Decides who is calling: the admin (one shared key) or a device (its own token).
/// A credential of the wrong kind is refused with 403, an unknown one with 401; too many unknown ones from one
/// client address with 429 (`AuthFailurePolicy`).
package struct Authenticator: Sendable {
    package let adminKey: AdminKey
    package let devices: DeviceStore
    package let clock: WallClock
    package let failures: AuthFailureLimiter

    /// The admin, as the pre-body check found it.
    package struct Admin: Sendable {}

    /// The check the server runs before reading the body; nil for open routes.
    package func authorizer(_ access: Access) -> RequestAuthorizer? {
        let auth = self
        switch access {
        case .open:
            return nil
        case .admin:
            return { request in try auth.requireAdmin(request); return Admin() }
        case .device:
            return { request in try auth.requireDevice(request) }
        case .adminOrDevice:
            return { request in
                if let token = request.bearerToken, auth.adminKey.matches(token) {
                    try auth.checkNotLimited(request)
                    return Admin()
                }
                return try auth.requireDevice(request)
            }
        }
    }

    package func requireAdmin(_ request: HTTPRequest) throws {
        if request.authorization is Admin { return }
        guard let token = request.bearerToken, !token.isEmpty else {
            throw HTTPError.unauthorized("This route needs the admin key as 'Authorization: Bearer <key>'.")
        }
        try checkNotLimited(request)
        if adminKey.matches(token) { return }
        if case .unknown = try devices.authenticate(tokenDigest: Secrets.sha256(token), now: clock.now()) {
            throw failed(request)
        }
        throw HTTPError.forbidden("A device token cannot call admin routes.")
    }

    /// Returns the calling device's id and records that it was seen.
    package func requireDevice(_ request: HTTPRequest) throws -> DeviceIdentity {
        if let identity = request.authorization as? DeviceIdentity { return identity }
        guard let token = request.bearerToken, !token.isEmpty else {
            throw HTTPError.unauthorized("This route needs the device token as 'Authorization: Bearer <token>'.")
        }
        try checkNotLimited(request)
        if adminKey.matches(token) {
            throw HTTPError.forbidden("Agent routes act as one device; use that device's token, not the admin key.")
        }
        switch try devices.authenticate(tokenDigest: Secrets.sha256(token), now: clock.now()) {
        case .active(let id): return DeviceIdentity(id: id)
        case .decommissioned: throw HTTPError.notFound("This device has been decommissioned.")
        case .unknown: throw failed(request)
        }
    }

    /// 429 while the client's address has used up its failed authentications.
    package func checkNotLimited(_ request: HTTPRequest) throws {
        guard let retryAfter = failures.retryAfter(request.clientAddress ?? "", now: .now) else { return }
        var headers = HTTPHeaders()
        headers.set("Retry-After", String(retryAfter))
        throw HTTPError(status: 429, code: "too_many_auth_failures",
                        detail: "Too many failed authentications from this address; retry in \(retryAfter) s.",
                        headers: headers)
    }

    private func failed(_ request: HTTPRequest) -> HTTPError {
        failures.recordFailure(request.clientAddress ?? "", now: .now)
        return HTTPError.unauthorized("The bearer token is not valid.")
    }
}

package struct DeviceIdentity: Sendable {
    package let id: UUID
}
