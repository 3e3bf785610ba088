import FleetAPI
import Foundation
import HTTPServer

/// Routes a device calls with its own token. Each acts only on the calling device.
struct AgentRoutes {
    let services: Services

    func register(on router: Router) {
        services.route(router, .PUT, "/v1/agent/context", access: .device, putContext)
    }

    func putContext(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try services.auth.requireDevice(request)
        let context = try request.decodeValidated(DeviceContext.self) { c in
            var v = Validator()
            c.validate(into: &v, prefix: "")
            return v.issues.map { ValidationIssue(field: String($0.field.drop(while: { $0 == "." })), message: $0.message) }
        }
        let reported = try services.devices.recordContext(device.id, context: context, now: services.clock.now())
        services.replanner.replan(device: device.id, trigger: "context")
        return try .body(reported)
    }
}
