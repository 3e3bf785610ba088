import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Model releases: create (once per `Idempotency-Key`), list, read, and the operator's controls. A release runs as
/// a campaign, so pause, resume and cancel are `CampaignScheduler`'s actions on it.
package struct ReleaseRoutes: Sendable {
    package let routes: RouteRegistrar
    package let releases: ReleaseStore
    package let campaigns: CampaignStore
    package let launch: ReleaseLaunch
    package let scheduler: CampaignScheduler
    package let clock: WallClock

    /// The campaign actions a release offers (`retry-failed` is the campaign's own).
    package static let actions: [CampaignScheduler.Action] = [.pause, .resume, .cancel]

    package func register() {
        routes.add(.POST, "/v1/releases", access: .operator, create)
        routes.add(.GET, "/v1/releases", access: .viewer, list)
        routes.add(.GET, "/v1/releases/{id}", access: .viewer, read)
        for action in Self.actions {
            routes.add(.POST, "/v1/releases/{id}/\(action.rawValue)", access: .operator) { request in try perform(action, request) }
        }
        routes.add(.POST, "/v1/releases/{id}/rollback", access: .operator, rollback)
        routes.add(.GET, "/v1/releases/{id}/rollback", access: .viewer, readRollback)
        routes.add(.GET, "/v1/releases/{id}/events", access: .viewer, events)
    }

    /// Every device the release moved goes back to its previous config (and model), its agent told by a `restore`
    /// job; the release ends `rolled_back` when those ended.
    package func rollback(_ request: HTTPRequest) throws -> HTTPResponse {
        let release = try find(request)
        switch try scheduler.rollback.rollback(campaign: release.campaign.id, cause: .operator, reason: "requested by operator", now: clock.now()) {
        case .notFound: throw HTTPError.notFound("No release \(release.id.uuidString.lowercased()).")
        case .conflict(let why): throw HTTPError.conflict(why.replacingOccurrences(of: "campaign", with: "release"), code: "invalid_release_state")
        case .done(let view): return try .body(view)
        }
    }

    /// A rolling-back or rolled-back release's rollback figures, read without changing anything.
    package func readRollback(_ request: HTTPRequest) throws -> HTTPResponse {
        let release = try find(request)
        guard release.status == .rollingBack || release.status == .rolledBack else {
            throw HTTPError.conflict("The release has not been rolled back (it is \(release.status.rawValue)).", code: "not_rolled_back")
        }
        return try .body(try scheduler.rollback.view(release.campaign.id, now: clock.now()))
    }

    /// The release's history (its campaign's events), oldest first.
    package func events(_ request: HTTPRequest) throws -> HTTPResponse {
        let (limit, after) = try CampaignRoutes.eventCursor(request)
        let release = try find(request)
        return try .body(try scheduler.events.list(campaign: release.campaign.id, limit: limit, after: after))
    }

    package func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let key = try IdempotencyKey.from(request)
        let body = try request.decodeValidated(ReleaseRequest.self) { $0.validate() }
        let outcome: IdempotencyStore.Outcome
        do { outcome = try launch.create(body, idempotencyKey: key, requestBody: request.body, now: clock.now()) } catch let refusal as ReleaseLaunch.Refusal {
            switch refusal {
            case .campaign(let r): throw HTTPError.launch(r)
            case .notReleasable(let model, let why):
                throw HTTPError(status: 422, code: "model_not_releasable", detail: "Model \(model.uuidString.lowercased()) \(why); release another.",
                                errors: [FieldError(field: "model_id", message: "must name a model that is not deprecated and can be planned with")])
            }
        }
        let answer: IdempotencyStore.StoredAnswer
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        switch outcome {
        case .fresh(let a): answer = a
        case .replay(let a): answer = a; headers.set("Idempotent-Replayed", "true")
        case .keyReused:
            throw HTTPError(status: 422, code: "idempotency_key_reused", detail: "This Idempotency-Key was used with a different request body.",
                            errors: [FieldError(field: "Idempotency-Key", message: "was already used with a different body")])
        }
        if let created = try? WireJSON.decode(ReleaseView.self, from: answer.body) {
            headers.set("Location", "/v1/releases/\(created.id.uuidString.lowercased())")
        }
        return HTTPResponse(status: answer.status, headers: headers, body: answer.body)
    }

    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let query = try ListQuery(request)
        let status = try Self.status(request)
        var model: UUID?
        if let text = request.query["model_id"] {
            guard let id = UUID(uuidString: text) else {
                throw HTTPError.badRequest("model_id must be a UUID.", code: "invalid_parameter", errors: [FieldError(field: "model_id", message: "must be a UUID")])
            }
            model = id
        }
        let (rows, next) = try releases.list(limit: query.limit, after: query.after, status: status, model: model)
        let items = try rows.compactMap { row in try campaigns.view(row.campaignID).map { ReleaseLaunch.view(row, campaign: $0) } }
        return try .body(Page(items: items, next: next))
    }

    package func read(_ request: HTTPRequest) throws -> HTTPResponse {
        return try .body(try find(request))
    }

    package func perform(_ action: CampaignScheduler.Action, _ request: HTTPRequest) throws -> HTTPResponse {
        let release = try find(request)
        switch try scheduler.perform(action, campaign: release.campaign.id, now: clock.now()) {
        case .notFound: throw HTTPError.notFound("No release \(release.id.uuidString.lowercased()).")
        case .conflict(let why): throw HTTPError.conflict(why.replacingOccurrences(of: "campaign", with: "release"), code: "invalid_release_state")
        case .done: return try .body(try find(request))
        }
    }

    private func find(_ request: HTTPRequest) throws -> ReleaseView {
        let id = try request.uuidParameter("id")
        guard let view = try launch.view(id) else { throw HTTPError.notFound("No release \(id.uuidString.lowercased()).") }
        return view
    }

    /// `?status=` of a list: a campaign status.
    static func status(_ request: HTTPRequest) throws -> CampaignStatus? {
        guard let text = request.query["status"] else { return nil }
        guard let status = CampaignStatus(rawValue: text) else {
            let allowed = CampaignStatus.allCases.map(\.rawValue).joined(separator: ", ")
            throw HTTPError.badRequest("Unknown status '\(text)'.", code: "invalid_parameter",
                                       errors: [FieldError(field: "status", message: "must be one of: \(allowed)")])
        }
        return status
    }
}
