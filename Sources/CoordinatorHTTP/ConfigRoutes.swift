import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Configs: what each device runs (its variants, partition and adapters), versioned, and the planner's what-if.
package struct ConfigRoutes: Sendable {
    package let routes: RouteRegistrar
    package let devices: DeviceStore
    package let configs: ConfigStore
    package let replanner: Replanner

    package func register() {
        routes.add(.GET, "/v1/devices/{id}/config", access: .viewer, deviceConfig)
        routes.add(.GET, "/v1/devices/{id}/config/history", access: .viewer, history)
        routes.add(.GET, "/v1/agent/config", access: .device, agentConfig)
        routes.add(.POST, "/v1/plan", access: .viewer, plan)
    }

    package func deviceConfig(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard try devices.find(id) != nil else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
        return try answer(request, try configs.current(id), device: id)
    }

    package func agentConfig(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        return try answer(request, try configs.current(device.id), device: device.id)
    }

    /// The config with its ETag; `If-None-Match` with the current tag → 304, so agents can poll cheaply.
    private func answer(_ request: HTTPRequest, _ config: DeviceConfigView?, device: UUID) throws -> HTTPResponse {
        guard let config else {
            throw HTTPError(status: 404, code: "no_config",
                            detail: "Device \(device.uuidString.lowercased()) has no config yet: no elastic model is published, or it has not been planned.")
        }
        var headers = HTTPHeaders()
        headers.set("ETag", config.etag)
        if request.ifNoneMatch(config.etag) {
            return HTTPResponse(status: 304, headers: headers)
        }
        return try .body(config, headers: headers)
    }

    package func history(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard try devices.find(id) != nil else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
        let limit = try ListQuery(request, cursorIsUUID: false).limit
        var before: Int?
        if let after = request.query["after"] {
            guard let v = Int(after), v >= 1 else {
                throw HTTPError.badRequest("after must be a config version.", code: "invalid_parameter",
                                           errors: [FieldError(field: "after", message: "must be a positive integer (the previous page's next)")])
            }
            before = v
        }
        let (items, next) = try configs.history(id, limit: limit, before: before)
        return try .body(Page(items: items, next: next))
    }

    package func plan(_ request: HTTPRequest) throws -> HTTPResponse {
        let body = try request.decodeValidated(PlanRequest.self) { $0.validate() }
        do { return try .body(try replanner.whatIf(body)) } catch let error as PlanInputError { throw HTTPError.planInput(error) }
    }
}

extension HTTPError {
    /// A plan request the planner cannot serve: 422 naming the field.
    package static func planInput(_ error: PlanInputError) -> HTTPError {
        .validation([FieldError(field: error.field, message: error.message)])
    }
}
