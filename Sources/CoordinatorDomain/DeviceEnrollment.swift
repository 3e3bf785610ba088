import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient

/// Registering a device: its row and a fresh bearer token, once per `Idempotency-Key`, then its first plan.
/// Tokens exist only as digests at rest: the stored answer never holds the token, and a replay rotates it (the
/// caller that retries never received the first one).
package struct DeviceEnrollment: Sendable {
    package let devices: DeviceStore
    package let idempotency: IdempotencyStore
    package let replanner: Replanner

    package init(devices: DeviceStore, idempotency: IdempotencyStore, replanner: Replanner) {
        self.devices = devices
        self.idempotency = idempotency
        self.replanner = replanner
    }

    package enum Outcome {
        case created(DeviceCreated)
        case replayed(DeviceCreated)
        /// The key was used with another request body; nothing was written.
        case keyReused
    }

    /// The device created under this key has been decommissioned since, so its answer cannot be replayed.
    package struct TargetGone: Error {}

    package func register(_ registration: DeviceRegistration, idempotencyKey key: String?, requestBody: [UInt8], now: Date) throws -> Outcome {
        func answer(_ device: Device, token: String?) throws -> IdempotencyStore.StoredAnswer {
            let body: [UInt8] = if let token { try WireJSON.bytes(DeviceCreated(device: device, token: token)) }
                                else { try WireJSON.bytes(device) }
            return IdempotencyStore.StoredAnswer(status: 201, body: body)
        }
        let createDevice = { (c: PostgresConnection) throws -> (Device, String) in
            let token = Secrets.generate(prefix: "fad_")
            let device = try devices.insert(id: UUID(), registration: registration, tokenDigest: Secrets.sha256(token), now: now, on: c)
            return (device, token)
        }
        let outcome: Outcome
        if let key {
            switch try idempotency.run(
                scope: "POST /v1/devices", key: key, requestBody: requestBody, now: now,
                create: { c in
                    let (device, token) = try createDevice(c)
                    return (try answer(device, token: nil), try answer(device, token: token))
                },
                replay: { c, stored in
                    let device = try WireJSON.decode(Device.self, from: stored.body)
                    let token = Secrets.generate(prefix: "fad_")
                    guard let current = try devices.rotateToken(device.id, tokenDigest: Secrets.sha256(token), now: now, on: c) else {
                        throw TargetGone()
                    }
                    return try answer(current, token: token)
                }) {
            case .fresh(let a): outcome = .created(try WireJSON.decode(DeviceCreated.self, from: a.body))
            case .replay(let a): outcome = .replayed(try WireJSON.decode(DeviceCreated.self, from: a.body))
            case .keyReused: return .keyReused
            }
        } else {
            let (device, token) = try idempotency.unkeyed(createDevice)
            outcome = .created(DeviceCreated(device: device, token: token))
        }
        switch outcome {
        case .created(let d), .replayed(let d): replanner.replan(device: d.device.id, trigger: "registration")
        case .keyReused: break
        }
        return outcome
    }

    /// A device enrolling itself with an enrolment token: one use of the token is spent and the device is created
    /// with the token's labels in one transaction, so a token with one use left enrols exactly one device. nil when
    /// the token can no longer be used (revoked, expired or used up since the headers were checked).
    package func enrol(_ registration: DeviceRegistration, enrolmentToken: UUID, tokens: EnrolmentTokenStore, now: Date) throws -> DeviceCreated? {
        let created = try idempotency.unkeyed { c -> DeviceCreated? in
            guard let labels = try tokens.consume(enrolmentToken, on: c) else { return nil }
            var registration = registration
            registration.labels = labels
            let token = Secrets.generate(prefix: "fad_")
            let device = try devices.insert(id: UUID(), registration: registration, tokenDigest: Secrets.sha256(token), now: now, on: c)
            return DeviceCreated(device: device, token: token)
        }
        if let created { replanner.replan(device: created.device.id, trigger: "enrolment") }
        return created
    }

    /// A new token for an active device (the old one stops working at once); nil when it is not active.
    package func rotateToken(_ id: UUID, now: Date) throws -> String? {
        let token = Secrets.generate(prefix: "fad_")
        let device = try idempotency.unkeyed { c in try devices.rotateToken(id, tokenDigest: Secrets.sha256(token), now: now, on: c) }
        return device == nil ? nil : token
    }
}
