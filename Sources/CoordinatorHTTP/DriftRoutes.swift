import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// `POST /v1/agent/drift`: a device reports its drift window. The device is the one its token names (a report
/// cannot speak for another); a device turning `drifting` has the triggers evaluated at once.
package struct DriftRoutes: Sendable {
    package let routes: RouteRegistrar
    package let drift: DriftStore
    package let evaluator: TriggerEvaluator
    package let clock: WallClock

    package func register() {
        routes.add(.POST, "/v1/agent/drift", access: .device, telemetry: true, report)
    }

    package func report(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let report = try request.decodeValidated(DriftReport.self) { $0.validate() }
        let state = DriftPolicy.state(of: report)
        let (stored, changed) = try drift.record(device.id, report: report, state: state, now: clock.now())
        if changed && state == .drifting { evaluator.evaluateAll() }
        return try .body(stored)
    }
}
