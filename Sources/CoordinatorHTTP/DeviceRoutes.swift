import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Admin routes of the device registry: register, list, read, patch, decommission.
package struct DeviceRoutes: Sendable {
    package let routes: RouteRegistrar
    package let devices: DeviceStore
    package let enrollment: DeviceEnrollment
    package let replanner: Replanner
    package let clock: WallClock
    /// Shows the device's drift state on its read.
    package var drift: DriftStore?

    package func register() {
        routes.add(.POST, "/v1/devices", access: .operator, create)
        routes.add(.GET, "/v1/devices", access: .viewer, list)
        routes.add(.GET, "/v1/devices/{id}", access: .viewer, read)
        routes.add(.PATCH, "/v1/devices/{id}", access: .operator, patch)
        routes.add(.DELETE, "/v1/devices/{id}", access: .admin, decommission)
    }

    /// Registers a device (`DeviceEnrollment`: once per `Idempotency-Key`, the token only in the answer sent).
    package func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let key = try IdempotencyKey.from(request)
        let registration = try request.decodeValidated(DeviceRegistration.self) { $0.validate() }
        let outcome: DeviceEnrollment.Outcome
        do {
            outcome = try enrollment.register(registration, idempotencyKey: key, requestBody: request.body, now: clock.now())
        } catch is DeviceEnrollment.TargetGone {
            throw HTTPError.conflict("The device created under this Idempotency-Key has been decommissioned.", code: "idempotency_target_gone")
        }
        switch outcome {
        case .created(let created):
            return try self.created(created)
        case .replayed(let created):
            var response = try self.created(created)
            response.headers.set("Idempotent-Replayed", "true")
            return response
        case .keyReused:
            throw HTTPError(status: 422, code: "idempotency_key_reused",
                            detail: "This Idempotency-Key was used with a different request body.",
                            errors: [FieldError(field: "Idempotency-Key", message: "was already used with a different body")])
        }
    }

    private func created(_ created: DeviceCreated) throws -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.set("Location", "/v1/devices/\(created.device.id.uuidString.lowercased())")
        headers.set("ETag", created.device.etag)
        return try .body(created, status: 201, headers: headers)
    }

    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
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
        return try .body(try devices.list(limit: query.limit, after: query.after, labels: labels, status: status))
    }

    package func read(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard var device = try devices.find(id) else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
        device.drift = try drift?.find(id)
        var headers = HTTPHeaders()
        headers.set("ETag", device.etag)
        return try .body(device, headers: headers)
    }

    package func patch(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        let expected = try expectedVersion(request, of: id)
        let patch = try request.decodeValidated(DevicePatch.self) { $0.validate() }
        switch try devices.update(id, patch: patch, expectedVersion: expected, now: clock.now()) {
        case .updated(let device):
            if patch.hardware != nil || patch.constraints != nil { replanner.replan(device: id, trigger: "patch") }
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

    package func decommission(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        let expected = try expectedVersion(request, of: id)
        switch try devices.decommission(id, expectedVersion: expected, now: clock.now()) {
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
        guard let device = try devices.find(id) else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
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
