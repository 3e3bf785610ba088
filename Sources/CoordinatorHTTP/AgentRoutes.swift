import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Routes a device calls with its own token. Each acts only on the calling device.
package struct AgentRoutes: Sendable {
    package let routes: RouteRegistrar
    package let devices: DeviceStore
    package let replanner: Replanner
    package let clock: WallClock

    package func register() {
        routes.add(.PUT, "/v1/agent/context", access: .device, putContext)
    }

    package func putContext(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let context = try request.decodeValidated(DeviceContext.self) { c in
            var v = Validator()
            c.validate(into: &v, prefix: "")
            return v.issues.map { ValidationIssue(field: String($0.field.drop(while: { $0 == "." })), message: $0.message) }
        }
        let reported = try devices.recordContext(device.id, context: context, now: clock.now())
        replanner.replan(device: device.id, trigger: "context")
        return try .body(reported)
    }
}
