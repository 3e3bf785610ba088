import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Campaign progress and the operator's controls.
package struct CampaignRoutes: Sendable {
    package let routes: RouteRegistrar
    package let campaigns: CampaignStore
    package let scheduler: CampaignScheduler
    package let clock: WallClock
    package let jobs: JobStore

    package func register() {
        routes.add(.GET, "/v1/campaigns", access: .viewer, list)
        routes.add(.GET, "/v1/campaigns/{id}", access: .viewer, read)
        routes.add(.GET, "/v1/campaigns/{id}/jobs", access: .viewer, listJobs)
        for action in CampaignScheduler.Action.allCases {
            routes.add(.POST, "/v1/campaigns/{id}/\(action.rawValue)", access: .operator) { request in try perform(action, request) }
        }
    }

    /// Campaigns (releases' too), filtered by `status` and `domain_id`, cursor-paginated.
    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let query = try ListQuery(request)
        let status = try ReleaseRoutes.status(request)
        var domain: UUID?
        if let text = request.query["domain_id"] {
            guard let id = UUID(uuidString: text) else {
                throw HTTPError.badRequest("domain_id must be a UUID.", code: "invalid_parameter", errors: [FieldError(field: "domain_id", message: "must be a UUID")])
            }
            domain = id
        }
        return try .body(try campaigns.list(limit: query.limit, after: query.after, status: status, domain: domain))
    }

    /// A campaign's jobs: device, wave, state, attempt, reported outcome and metrics, the gate's verdict.
    package func listJobs(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        let query = try ListQuery(request)
        var state: JobState?
        if let text = request.query["state"] {
            guard let s = JobState(rawValue: text) else {
                let allowed = JobState.allCases.map(\.rawValue).joined(separator: ", ")
                throw HTTPError.badRequest("Unknown state '\(text)'.", code: "invalid_parameter",
                                           errors: [FieldError(field: "state", message: "must be one of: \(allowed)")])
            }
            state = s
        }
        guard try campaigns.exists(id) else { throw HTTPError.notFound("No campaign \(id.uuidString.lowercased()).") }
        return try .body(try jobs.list(campaign: id, state: state, limit: query.limit, after: query.after))
    }

    package func read(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard let view = try campaigns.view(id) else { throw HTTPError.notFound("No campaign \(id.uuidString.lowercased()).") }
        return try .body(view)
    }

    package func perform(_ action: CampaignScheduler.Action, _ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        switch try scheduler.perform(action, campaign: id, now: clock.now()) {
        case .notFound: throw HTTPError.notFound("No campaign \(id.uuidString.lowercased()).")
        case .conflict(let why): throw HTTPError.conflict(why, code: "invalid_campaign_state")
        case .done:
            guard let view = try campaigns.view(id) else { throw HTTPError.notFound("No campaign.") }
            return try .body(view)
        }
    }
}
