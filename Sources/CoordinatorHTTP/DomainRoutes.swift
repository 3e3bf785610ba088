import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// Domain-shift events: posting one creates its campaign and one job per targeted device.
package struct DomainRoutes: Sendable {
    package let routes: RouteRegistrar
    package let campaigns: CampaignStore
    package let launch: CampaignLaunch
    package let clock: WallClock
    /// Shows the trigger that created a domain (`origin`) on its read.
    package var triggers: TriggerStore?

    package func register() {
        routes.add(.POST, "/v1/domains", access: .operator, create)
        routes.add(.GET, "/v1/domains", access: .viewer, list)
        routes.add(.GET, "/v1/domains/{id}", access: .viewer, read)
    }

    /// Creates the domain, its campaign and its jobs (`CampaignLaunch`, once per `Idempotency-Key`).
    package func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let key = try IdempotencyKey.from(request)
        let body = try request.decodeValidated(DomainRequest.self) { $0.validate() }
        let answer: IdempotencyStore.StoredAnswer
        var replayed = false
        let outcome: IdempotencyStore.Outcome
        do { outcome = try launch.create(body, idempotencyKey: key, requestBody: request.body, now: clock.now()) } catch let refusal as CampaignLaunch.Refusal {
            throw HTTPError.launch(refusal)
        }
        switch outcome {
        case .fresh(let a): answer = a
        case .replay(let a): answer = a; replayed = true
        case .keyReused:
            throw HTTPError(status: 422, code: "idempotency_key_reused", detail: "This Idempotency-Key was used with a different request body.",
                            errors: [FieldError(field: "Idempotency-Key", message: "was already used with a different body")])
        }
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        if replayed { headers.set("Idempotent-Replayed", "true") }
        if let created = try? WireJSON.decode(DomainCreated.self, from: answer.body) {
            headers.set("Location", "/v1/domains/\(created.domain.id.uuidString.lowercased())")
        }
        return HTTPResponse(status: answer.status, headers: headers, body: answer.body)
    }

    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let query = try ListQuery(request)
        return try .body(try campaigns.domains(limit: query.limit, after: query.after))
    }

    package func read(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard var domain = try campaigns.domain(id) else { throw HTTPError.notFound("No domain \(id.uuidString.lowercased()).") }
        domain.origin = try triggers?.origin(ofDomain: id)
        return try .body(domain)
    }
}

extension HTTPError {
    /// A campaign `CampaignLaunch` refused: 422 naming the field at fault.
    package static func launch(_ refusal: CampaignLaunch.Refusal) -> HTTPError {
        switch refusal {
        case .unknownModel(let model):
            return HTTPError(status: 422, code: "unknown_model", detail: "No model \(model.uuidString.lowercased()); publish it with POST /v1/models first.",
                             errors: [FieldError(field: "model_id", message: "must name a published model")])
        case .unknownDevices(let missing):
            let shown = missing.prefix(5).map { $0.uuidString.lowercased() }.joined(separator: ", ")
            return HTTPError(status: 422, code: "unknown_devices",
                             detail: "\(missing.count) selected device(s) do not exist or are decommissioned: \(shown)\(missing.count > 5 ? ", …" : "").",
                             errors: [FieldError(field: "selector.device_ids", message: "must name active devices")])
        case .noTargets:
            return HTTPError(status: 422, code: "no_targets", detail: "The selector matches no active device.",
                             errors: [FieldError(field: "selector", message: "matches no active device")])
        }
    }
}
