import FleetAPI
import Foundation
import HTTPServer

/// Campaign progress and the operator's controls.
struct CampaignRoutes {
    let services: Services

    func register(on router: Router) {
        services.route(router, .GET, "/v1/campaigns/{id}", access: .admin, read)
        for action in CampaignScheduler.Action.allCases {
            services.route(router, .POST, "/v1/campaigns/{id}/\(action.rawValue)", access: .admin) { request in try perform(action, request) }
        }
    }

    func read(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let id = try request.uuidParameter("id")
        guard let view = try services.campaigns.view(id) else { throw HTTPError.notFound("No campaign \(id.uuidString.lowercased()).") }
        return try .body(view)
    }

    func perform(_ action: CampaignScheduler.Action, _ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let id = try request.uuidParameter("id")
        switch try services.scheduler.perform(action, campaign: id, now: services.clock.now()) {
        case .notFound: throw HTTPError.notFound("No campaign \(id.uuidString.lowercased()).")
        case .conflict(let why): throw HTTPError.conflict(why, code: "invalid_campaign_state")
        case .done:
            guard let view = try services.campaigns.view(id) else { throw HTTPError.notFound("No campaign.") }
            return try .body(view)
        }
    }
}
