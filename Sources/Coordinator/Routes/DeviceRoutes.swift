import FleetAPI
import Foundation
import HTTPServer
import PostgresClient

/// Admin routes of the device registry: register, list, read, patch, decommission.
struct DeviceRoutes {
    let services: Services

    func register(on router: Router) {
        services.route(router, .POST, "/v1/devices", access: .admin, create)
        services.route(router, .GET, "/v1/devices", access: .admin, list)
        services.route(router, .GET, "/v1/devices/{id}", access: .admin, read)
        services.route(router, .PATCH, "/v1/devices/{id}", access: .admin, patch)
        services.route(router, .DELETE, "/v1/devices/{id}", access: .admin, decommission)
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let key = try IdempotencyKey.from(request)
        let registration = try request.decodeValidated(DeviceRegistration.self) { $0.validate() }
        let now = services.clock.now()

        // The stored answer never holds the token: a replay rotates it (the caller that retries
        // never received the first one), so tokens exist only as digests at rest.
        func answer(_ device: Device, token: String?) throws -> IdempotencyStore.StoredAnswer {
            let body: [UInt8] = if let token { try JSON.bytes(DeviceCreated(device: device, token: token)) }
                                else { try JSON.bytes(device) }
            return IdempotencyStore.StoredAnswer(status: 201, body: body)
        }
        let createDevice = { (c: PostgresConnection) throws -> (Device, String) in
            let token = Secrets.generate(prefix: "fad_")
            let device = try services.devices.insert(id: UUID(), registration: registration,
                                                     tokenDigest: Secrets.sha256(token), now: now, on: c)
            return (device, token)
        }

        guard let key else {
            let (device, token) = try services.idempotency.unkeyed(createDevice)
            return try created(device, token: token)
        }
        let outcome = try services.idempotency.run(
            scope: "POST /v1/devices", key: key, requestBody: request.body, now: now,
            create: { c in
                let (device, token) = try createDevice(c)
                return (try answer(device, token: nil), try answer(device, token: token))
            },
            replay: { c, stored in
                let device = try JSON.decode(Device.self, from: stored.body)
                let token = Secrets.generate(prefix: "fad_")
                guard let current = try services.devices.rotateToken(device.id, tokenDigest: Secrets.sha256(token), now: now, on: c) else {
                    throw HTTPError.conflict("The device created under this Idempotency-Key has been decommissioned.",
                                             code: "idempotency_target_gone")
                }
                return try answer(current, token: token)
            })
        switch outcome {
        case .fresh(let a):
            let device = try JSON.decode(DeviceCreated.self, from: a.body)
            return try created(device.device, token: device.token)
        case .replay(let a):
            let device = try JSON.decode(DeviceCreated.self, from: a.body)
            var response = try created(device.device, token: device.token)
            response.headers.set("Idempotent-Replayed", "true")
            return response
        case .keyReused:
            throw HTTPError(status: 422, code: "idempotency_key_reused",
                            detail: "This Idempotency-Key was used with a different request body.",
                            errors: [FieldError(field: "Idempotency-Key", message: "was already used with a different body")])
        }
    }

    private func created(_ device: Device, token: String) throws -> HTTPResponse {
        services.replanner.replan(device: device.id, trigger: "registration")
        var headers = HTTPHeaders()
        headers.set("Location", "/v1/devices/\(device.id.uuidString.lowercased())")
        headers.set("ETag", device.etag)
        return try .body(DeviceCreated(device: device, token: token), status: 201, headers: headers)
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let query = try ListQuery(request)
        var labels: [String: String]?
        if let text = request.query["labels"] {
            switch Labels.parseSelector(text) {
            case .success(let l): labels = l
            case .failure(let issue): throw HTTPError.badRequest(issue.message, code: "invalid_parameter",
                                                                 errors: [FieldError(field: issue.field, message: issue.message)])
            }
        }
        var status: Device.Status?
        if let text = request.query["status"] {
            guard let s = Device.Status(rawValue: text) else {
                let allowed = Device.Status.allCases.map(\.rawValue).joined(separator: ", ")
                throw HTTPError.badRequest("Unknown status '\(text)'.", code: "invalid_parameter",
                                           errors: [FieldError(field: "status", message: "must be one of: \(allowed)")])
            }
            status = s
        }
        return try .body(try services.devices.list(limit: query.limit, after: query.after, labels: labels, status: status))
    }

    func read(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let id = try request.uuidParameter("id")
        guard let device = try services.devices.find(id) else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
        var headers = HTTPHeaders()
        headers.set("ETag", device.etag)
        return try .body(device, headers: headers)
    }

    func patch(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let id = try request.uuidParameter("id")
        let expected = try expectedVersion(request, of: id)
        let patch = try request.decodeValidated(DevicePatch.self) { $0.validate() }
        switch try services.devices.update(id, patch: patch, expectedVersion: expected, now: services.clock.now()) {
        case .updated(let device):
            if patch.hardware != nil || patch.constraints != nil { services.replanner.replan(device: id, trigger: "patch") }
            var headers = HTTPHeaders()
            headers.set("ETag", device.etag)
            return try .body(device, headers: headers)
        case .notFound:
            throw HTTPError.notFound("No device \(id.uuidString.lowercased()).")
        case .decommissioned:
            throw HTTPError.conflict("The device is decommissioned and can no longer change.", code: "device_decommissioned")
        case .versionMismatch(let current):
            throw Self.precondition(current: current)
        }
    }

    func decommission(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let id = try request.uuidParameter("id")
        let expected = try expectedVersion(request, of: id)
        switch try services.devices.decommission(id, expectedVersion: expected, now: services.clock.now()) {
        case .decommissioned: return .noContent
        case .notFound: throw HTTPError.notFound("No device \(id.uuidString.lowercased()).")
        case .versionMismatch(let current): throw Self.precondition(current: current)
        }
    }

    /// `If-Match` checked against the device as it is now (`IfMatch`: strong comparison, lists, `*`); the version
    /// that matched is returned so the store changes the row only if it is still that version (nil: no condition).
    /// No such device is a 404; a tag that does not match is a 412.
    private func expectedVersion(_ request: HTTPRequest, of id: UUID) throws -> Int? {
        let condition = try request.ifMatch()
        guard condition != .absent else { return nil }
        guard let device = try services.devices.find(id) else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
        guard condition.matches(current: device.etag) else { throw Self.precondition(current: device.version) }
        return device.version
    }

    private static func precondition(current: Int) -> HTTPError {
        var headers = HTTPHeaders()
        headers.set("ETag", "\"v\(current)\"")
        return HTTPError(status: 412, code: "precondition_failed",
                         detail: "If-Match does not match the device's current version \"v\(current)\"; read it again and retry.",
                         headers: headers)
    }
}
