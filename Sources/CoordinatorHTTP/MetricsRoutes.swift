import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Per-device time series and the fleet summary.
package struct MetricsRoutes: Sendable {
    package let routes: RouteRegistrar
    package let devices: DeviceStore
    package let campaigns: CampaignStore
    package let jobs: JobStore
    package let metrics: MetricsStore
    /// Counts devices by drift state in the summary.
    package var drift: DriftStore?

    package func register() {
        routes.add(.GET, "/v1/devices/{id}/metrics", access: .viewer, deviceMetrics)
        routes.add(.GET, "/v1/fleet/summary", access: .viewer, summary)
    }

    package func deviceMetrics(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        var limit = 100
        if let t = request.query["limit"] {
            guard let n = Int(t), (1...1000).contains(n) else {
                throw HTTPError.badRequest("limit must be 1–1000.", code: "invalid_parameter", errors: [FieldError(field: "limit", message: "must be an integer from 1 to 1000")])
            }
            limit = n
        }
        var after: Int?
        if let t = request.query["after"] {
            guard let n = Int(t), n >= 0 else {
                throw HTTPError.badRequest("after must be a `next` cursor.", code: "invalid_parameter", errors: [FieldError(field: "after", message: "must be a cursor returned as `next`")])
            }
            after = n
        }
        guard try devices.find(id) != nil else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
        return try .body(try metrics.series(device: id, kind: request.query["kind"], limit: limit, after: after))
    }

    package func summary(_ request: HTTPRequest) throws -> HTTPResponse {
        let (byStatus, byClass) = try devices.counts()
        let gains = try jobs.adaptationGains()
        var summary = FleetSummary(devicesByStatus: byStatus, devicesByClass: byClass, campaignsByStatus: try campaigns.countsByStatus(),
                                   jobsByState: try jobs.countsByState(), meanAccuracyGain: gains.meanAccuracyGain,
                                   meanEntropyReduction: gains.meanEntropyReduction, adaptedDevices: gains.adaptedDevices)
        summary.devicesByDriftState = try drift?.countsByState()
        return try .body(summary)
    }
}
