import FleetAPI
import Foundation
import HTTPServer

/// Per-device time series and the fleet summary.
struct MetricsRoutes {
    let services: Services

    func register(on router: Router) {
        services.route(router, .GET, "/v1/devices/{id}/metrics", access: .admin, deviceMetrics)
        services.route(router, .GET, "/v1/fleet/summary", access: .admin, summary)
    }

    func deviceMetrics(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
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
        guard try services.devices.find(id) != nil else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
        return try .body(try services.metricsStore.series(device: id, kind: request.query["kind"], limit: limit, after: after))
    }

    func summary(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        return try .body(try FleetSummary.load(services.pool))
    }
}
