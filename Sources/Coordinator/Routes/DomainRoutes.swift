import FleetAPI
import Foundation
import HTTPServer
import PostgresClient
import Rollout

/// Domain-shift events: posting one creates its campaign and one job per targeted device.
struct DomainRoutes {
    let services: Services

    func register(on router: Router) {
        services.route(router, .POST, "/v1/domains", access: .admin, create)
        services.route(router, .GET, "/v1/domains", access: .admin, list)
        services.route(router, .GET, "/v1/domains/{id}", access: .admin, read)
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let key = try IdempotencyKey.from(request)
        let body = try request.decodeValidated(DomainRequest.self) { $0.validate() }
        let now = services.clock.now()
        let make = { (c: PostgresConnection) throws -> IdempotencyStore.StoredAnswer in
            let created = try createCampaign(body, now: now, on: c)
            return IdempotencyStore.StoredAnswer(status: 201, body: try JSON.bytes(created))
        }
        let answer: IdempotencyStore.StoredAnswer
        var replayed = false
        if let key {
            switch try services.idempotency.run(scope: "POST /v1/domains", key: key, requestBody: request.body, now: now,
                                                create: { c in let a = try make(c); return (a, a) },
                                                replay: { _, stored in stored }) {
            case .fresh(let a): answer = a
            case .replay(let a): answer = a; replayed = true
            case .keyReused:
                throw HTTPError(status: 422, code: "idempotency_key_reused", detail: "This Idempotency-Key was used with a different request body.",
                                errors: [FieldError(field: "Idempotency-Key", message: "was already used with a different body")])
            }
        } else {
            answer = try services.idempotency.unkeyed(make)
        }
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        if replayed { headers.set("Idempotent-Replayed", "true") }
        if let created = try? JSON.decode(DomainCreated.self, from: answer.body) {
            headers.set("Location", "/v1/domains/\(created.domain.id.uuidString.lowercased())")
        }
        return HTTPResponse(status: answer.status, headers: headers, body: answer.body)
    }

    /// Resolves the targets, plans each device's job, and writes domain, campaign and jobs in the caller's transaction.
    private func createCampaign(_ body: DomainRequest, now: Date, on c: PostgresConnection) throws -> DomainCreated {
        guard try services.models.exists(body.modelID, on: c) else {
            throw HTTPError(status: 422, code: "unknown_model", detail: "No model \(body.modelID.uuidString.lowercased()); publish it with POST /v1/models first.",
                            errors: [FieldError(field: "model_id", message: "must name a published model")])
        }
        let devices = try services.devices.targets(labels: body.selector.labels, ids: body.selector.deviceIDs, on: c)
        if let ids = body.selector.deviceIDs {
            let found = Set(devices.map(\.id))
            let missing = ids.filter { !found.contains($0) }
            if !missing.isEmpty {
                let shown = missing.prefix(5).map { $0.uuidString.lowercased() }.joined(separator: ", ")
                throw HTTPError(status: 422, code: "unknown_devices",
                                detail: "\(missing.count) selected device(s) do not exist or are decommissioned: \(shown)\(missing.count > 5 ? ", …" : "").",
                                errors: [FieldError(field: "selector.device_ids", message: "must name active devices")])
            }
        }
        guard !devices.isEmpty else {
            throw HTTPError(status: 422, code: "no_targets", detail: "The selector matches no active device.",
                            errors: [FieldError(field: "selector", message: "matches no active device")])
        }
        let domainID = UUID()
        let campaignID = UUID()
        let plan = RolloutPlan(devices: devices, request: body, domainID: domainID)
        try services.campaigns.create(domainID: domainID, campaignID: campaignID, request: body, targets: plan.targets,
                                      waveCount: plan.waveCount, now: now, on: c)
        guard let domain = try services.campaigns.domain(domainID, on: c),
              let campaign = try services.campaigns.view(campaignID, on: c) else {
            throw HTTPError.internalError("campaign \(campaignID)")
        }
        return DomainCreated(domain: domain, campaign: campaign)
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let query = try ListQuery(request)
        return try .body(try services.campaigns.domains(limit: query.limit, after: query.after))
    }

    func read(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let id = try request.uuidParameter("id")
        guard let domain = try services.campaigns.domain(id) else { throw HTTPError.notFound("No domain \(id.uuidString.lowercased()).") }
        return try .body(domain)
    }
}
