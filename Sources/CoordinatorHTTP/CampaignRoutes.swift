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
        routes.add(.POST, "/v1/campaigns/{id}/rollback", access: .operator, rollback)
        routes.add(.GET, "/v1/campaigns/{id}/rollback", access: .viewer, readRollback)
        routes.add(.GET, "/v1/campaigns/{id}/events", access: .viewer, events)
        routes.add(.POST, "/v1/campaigns/{id}/jobs/{job_id}/cancel", access: .operator, cancelJob)
    }

    /// Every device the campaign changed (a canceled campaign's too) gets its previous config back (a new version,
    /// trigger `rollback`) and a `restore` job for its agent; the campaign ends `rolled_back` when those ended
    /// (`Rollback`). A second call answers the current figures and writes nothing.
    package func rollback(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        switch try scheduler.rollback.rollback(campaign: id, cause: .operator, reason: "requested by operator", now: clock.now()) {
        case .notFound: throw HTTPError.notFound("No campaign \(id.uuidString.lowercased()).")
        case .conflict(let why): throw HTTPError.conflict(why, code: "invalid_campaign_state")
        case .done(let view): return try .body(view)
        }
    }

    /// A rolling-back or rolled-back campaign's rollback figures, read without changing anything.
    package func readRollback(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard let status = try campaigns.status(id) else { throw HTTPError.notFound("No campaign \(id.uuidString.lowercased()).") }
        guard status == .rollingBack || status == .rolledBack else {
            throw HTTPError.conflict("The campaign has not been rolled back (it is \(status.rawValue)).", code: "not_rolled_back")
        }
        return try .body(try scheduler.rollback.view(id, now: clock.now()))
    }

    /// The campaign's history, oldest first; `after` is the `next` of the previous page (an event id).
    package func events(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        let (limit, after) = try Self.eventCursor(request)
        guard try campaigns.exists(id) else { throw HTTPError.notFound("No campaign \(id.uuidString.lowercased()).") }
        return try .body(try scheduler.events.list(campaign: id, limit: limit, after: after))
    }

    /// `limit` and the integer `after` of an event list.
    static func eventCursor(_ request: HTTPRequest) throws -> (limit: Int, after: Int?) {
        let query = try ListQuery(request, cursorIsUUID: false)
        guard let text = request.query["after"] else { return (query.limit, nil) }
        guard let n = Int(text), n >= 0 else {
            throw HTTPError.badRequest("after must be the `next` value of a previous page.", code: "invalid_parameter",
                                       errors: [FieldError(field: "after", message: "must be a cursor returned as `next`")])
        }
        return (query.limit, n)
    }

    /// Cancels one device's job: queued or retrying → `canceled`; leased → fenced (the agent's result gets 409).
    package func cancelJob(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        let job = try request.uuidParameter("job_id")
        switch try scheduler.cancelJob(job, campaign: id, now: clock.now()) {
        case .notFound: throw HTTPError.notFound("No job \(job.uuidString.lowercased()) in campaign \(id.uuidString.lowercased()).")
        case .conflict(let why): throw HTTPError.conflict(why, code: "invalid_job_state")
        case .done:
            guard let view = try campaigns.view(id) else { throw HTTPError.notFound("No campaign.") }
            return try .body(view)
        }
    }

    /// Campaigns (releases' too), filtered by `status`, `domain_id` and `model_id`, cursor-paginated.
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
        var model: UUID?
        if let text = request.query["model_id"] {
            guard let id = UUID(uuidString: text) else {
                throw HTTPError.badRequest("model_id must be a UUID.", code: "invalid_parameter", errors: [FieldError(field: "model_id", message: "must be a UUID")])
            }
            model = id
        }
        return try .body(try campaigns.list(limit: query.limit, after: query.after, status: status, domain: domain, model: model))
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
