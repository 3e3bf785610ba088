import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Who may call a route. Declared with every route (`RouteRegistrar.add`), decided from the headers before the
/// server reads the body, and stated for each operation of openapi/openapi.yaml as `x-required-role`.
/// `.viewer`, `.operator` and `.admin` take an API key (or the bootstrap admin key) of at least that role.
package enum Access: Sendable, Equatable {
    case viewer
    case `operator`
    case admin
    /// A device's own token (agent routes).
    case device
    /// An API key of any role or a device's token (model package downloads).
    case viewerOrDevice
    /// An enrolment token (a device enrolling itself).
    case enrolment
    /// No credential (probes, the contract).
    case open

    /// The name `x-required-role` gives it.
    package var name: String {
        switch self {
        case .viewer: "viewer"
        case .operator: "operator"
        case .admin: "admin"
        case .device: "device"
        case .viewerOrDevice: "viewer-or-device"
        case .enrolment: "enrolment-token"
        case .open: "open"
        }
    }

    var role: Role? {
        switch self {
        case .viewer, .viewerOrDevice: .viewer
        case .operator: .operator
        case .admin: .admin
        case .device, .enrolment, .open: nil
        }
    }
}

/// The holder of an API key, or of the bootstrap admin key (no id, role admin).
package struct KeyHolder: Sendable, AccessLogActor {
    package let id: UUID?
    package let name: String
    package let role: Role

    package static let bootstrapAdmin = KeyHolder(id: nil, name: "admin-key", role: .admin)

    package var actorDescription: String {
        guard let id else { return "admin-key" }
        return "key:\(id.uuidString.lowercased()):\(name)"
    }
}

/// An enrolment token, as the enrol route finds it.
package struct EnrolmentCredential: Sendable, AccessLogActor {
    package let id: UUID
    package var actorDescription: String { "enrolment-token:\(id.uuidString.lowercased())" }
}

/// Decides who is calling: an API key with a role (or the bootstrap admin key), a device (its own token), or an
/// enrolment token. A credential of the wrong kind or too small a role is refused with 403, an unknown, expired
/// or revoked one with 401; too many unknown ones from one client address with 429 (`AuthFailurePolicy`).
package struct Authenticator: Sendable {
    package let adminKey: AdminKey
    package let devices: DeviceStore
    package let apiKeys: ApiKeyStore
    package let enrolmentTokens: EnrolmentTokenStore
    package let clock: WallClock
    package let failures: AuthFailureLimiter

    /// Prefixes of generated secrets (`Secrets.generate`): they tell which table to look a token up in.
    package static let apiKeyPrefix = "fak_"
    package static let enrolmentTokenPrefix = "fae_"
    package static let deviceTokenPrefix = "fad_"

    /// The check the server runs before reading the body; nil for open routes.
    package func authorizer(_ access: Access) -> RequestAuthorizer? {
        let auth = self
        switch access {
        case .open:
            return nil
        case .viewer, .operator, .admin:
            return { request in try auth.requireRole(access.role!, request) }
        case .device:
            return { request in try auth.requireDevice(request) }
        case .viewerOrDevice:
            return { request in
                if let token = request.bearerToken, token.hasPrefix(Self.deviceTokenPrefix) || !auth.looksLikeKey(token) {
                    return try auth.requireDevice(request)
                }
                return try auth.requireRole(.viewer, request)
            }
        case .enrolment:
            return { request in try auth.requireEnrolmentToken(request) }
        }
    }

    /// Whether `token` is the admin key or has the API key prefix.
    private func looksLikeKey(_ token: String) -> Bool {
        token.hasPrefix(Self.apiKeyPrefix) || adminKey.matches(token)
    }

    /// The caller's key when its role is at least `role`.
    @discardableResult
    package func requireRole(_ role: Role, _ request: HTTPRequest) throws -> KeyHolder {
        let holder: KeyHolder
        if let known = request.authorization as? KeyHolder {
            holder = known
        } else {
            guard let token = request.bearerToken, !token.isEmpty else {
                throw HTTPError.unauthorized("This route needs an API key as 'Authorization: Bearer <key>'.")
            }
            try checkNotLimited(request)
            holder = try keyHolder(token, request)
        }
        guard holder.role >= role else {
            throw HTTPError(status: 403, code: "insufficient_role",
                            detail: "This route needs the role '\(role.rawValue)'; the key '\(holder.name)' has the role '\(holder.role.rawValue)'.")
        }
        return holder
    }

    private func keyHolder(_ token: String, _ request: HTTPRequest) throws -> KeyHolder {
        if adminKey.matches(token) { return .bootstrapAdmin }
        let digest = Secrets.sha256(token)
        if token.hasPrefix(Self.apiKeyPrefix) {
            switch try apiKeys.authenticate(keyDigest: digest) {
            case .active(let key): return KeyHolder(id: key.id, name: key.name, role: key.role)
            case .expired: throw refused(request, code: "api_key_expired", "This API key has expired.")
            case .revoked: throw refused(request, code: "api_key_revoked", "This API key has been revoked.")
            case .unknown:
                throw failed(request)
            }
        }
        if case .unknown = try devices.authenticate(tokenDigest: digest, now: clock.now()) {
            throw failed(request)
        }
        throw HTTPError.forbidden("A device token cannot call operator routes; use an API key.")
    }

    /// Who a valid bearer credential names, whatever the route allows (a key, or a device), for the audit row of a
    /// 403; nil for anything not valid now. Reads, records no failure: the refusal was already counted.
    package func caller(_ request: HTTPRequest) -> (any Sendable)? {
        guard let token = request.bearerToken, !token.isEmpty else { return nil }
        if adminKey.matches(token) { return KeyHolder.bootstrapAdmin }
        let digest = Secrets.sha256(token)
        if token.hasPrefix(Self.apiKeyPrefix) {
            guard case .active(let key)? = try? apiKeys.authenticate(keyDigest: digest) else { return nil }
            return KeyHolder(id: key.id, name: key.name, role: key.role)
        }
        guard case .active(let id)? = try? devices.authenticate(tokenDigest: digest, now: clock.now()) else { return nil }
        return DeviceIdentity(id: id)
    }

    /// Returns the calling device's id and records that it was seen.
    package func requireDevice(_ request: HTTPRequest) throws -> DeviceIdentity {
        if let identity = request.authorization as? DeviceIdentity { return identity }
        guard let token = request.bearerToken, !token.isEmpty else {
            throw HTTPError.unauthorized("This route needs the device token as 'Authorization: Bearer <token>'.")
        }
        try checkNotLimited(request)
        if looksLikeKey(token) {
            throw HTTPError.forbidden("Agent routes act as one device; use that device's token, not an API key.")
        }
        switch try devices.authenticate(tokenDigest: Secrets.sha256(token), now: clock.now()) {
        case .active(let id): return DeviceIdentity(id: id)
        case .decommissioned: throw HTTPError.notFound("This device has been decommissioned.")
        case .unknown: throw failed(request)
        }
    }

    /// The enrolment token a device enrols with, when it can still be used.
    package func requireEnrolmentToken(_ request: HTTPRequest) throws -> EnrolmentCredential {
        if let known = request.authorization as? EnrolmentCredential { return known }
        guard let token = request.bearerToken, !token.isEmpty else {
            throw HTTPError.unauthorized("This route needs an enrolment token as 'Authorization: Bearer <token>'.")
        }
        try checkNotLimited(request)
        guard token.hasPrefix(Self.enrolmentTokenPrefix) else { throw failed(request) }
        switch try enrolmentTokens.check(tokenDigest: Secrets.sha256(token)) {
        case .usable(let id): return EnrolmentCredential(id: id)
        case .unknown: throw failed(request)
        case .expired: throw refused(request, code: "enrolment_token_expired", "This enrolment token has expired.")
        case .usedUp: throw refused(request, code: "enrolment_token_used_up", "This enrolment token has been used as many times as it allows.")
        case .revoked: throw refused(request, code: "enrolment_token_revoked", "This enrolment token has been revoked.")
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

    private func recordFailure(_ request: HTTPRequest) {
        failures.recordFailure(request.clientAddress ?? "", now: .now)
    }

    /// A credential that exists but can no longer be used: 401 with its own code, counted as a failure.
    private func refused(_ request: HTTPRequest, code: String, _ detail: String) -> HTTPError {
        recordFailure(request)
        return HTTPError(status: 401, code: code, detail: detail, headers: ["WWW-Authenticate": "Bearer"])
    }

    private func failed(_ request: HTTPRequest) -> HTTPError {
        recordFailure(request)
        return HTTPError.unauthorized("The bearer token is not valid.")
    }
}

package struct DeviceIdentity: Sendable, AccessLogActor {
    package let id: UUID
    package var actorDescription: String { "device:\(id.uuidString.lowercased())" }
}
