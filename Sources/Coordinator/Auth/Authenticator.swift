import Foundation
import HTTPServer

/// Decides who is calling: the admin (one shared key) or a device (its own token).
/// A credential of the wrong kind is refused with 403, an unknown one with 401.
struct Authenticator: Sendable {
    let adminKey: AdminKey
    let devices: DeviceStore
    let clock: WallClock

    func requireAdmin(_ request: HTTPRequest) throws {
        guard let token = request.bearerToken, !token.isEmpty else {
            throw HTTPError.unauthorized("This route needs the admin key as 'Authorization: Bearer <key>'.")
        }
        if adminKey.matches(token) { return }
        if case .unknown = try devices.authenticate(tokenDigest: Secrets.sha256(token), now: clock.now()) {
            throw HTTPError.unauthorized("The bearer token is not valid.")
        }
        throw HTTPError.forbidden("A device token cannot call admin routes.")
    }

    /// Returns the calling device's id and records that it was seen.
    func requireDevice(_ request: HTTPRequest) throws -> DeviceIdentity {
        guard let token = request.bearerToken, !token.isEmpty else {
            throw HTTPError.unauthorized("This route needs the device token as 'Authorization: Bearer <token>'.")
        }
        if adminKey.matches(token) {
            throw HTTPError.forbidden("Agent routes act as one device; use that device's token, not the admin key.")
        }
        switch try devices.authenticate(tokenDigest: Secrets.sha256(token), now: clock.now()) {
        case .active(let id): return DeviceIdentity(id: id)
        case .decommissioned: throw HTTPError.notFound("This device has been decommissioned.")
        case .unknown: throw HTTPError.unauthorized("The bearer token is not valid.")
        }
    }
}

struct DeviceIdentity: Sendable {
    let id: UUID
}
