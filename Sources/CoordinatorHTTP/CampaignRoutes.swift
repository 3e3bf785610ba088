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

    package func register() {
        routes.add(.GET, "/v1/campaigns/{id}", access: .viewer, read)
        for action in CampaignScheduler.Action.allCases {
            routes.add(.POST, "/v1/campaigns/{id}/\(action.rawValue)", access: .operator) { request in try perform(action, request) }
        }
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
