import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer
import PostgresClient

/// Drift triggers: create (once per `Idempotency-Key`), list, read, change (`PATCH` with `If-Match`, also to
/// enable or disable), delete. Operators manage them; viewers read them.
package struct TriggerRoutes: Sendable {
    package let routes: RouteRegistrar
    package let triggers: TriggerStore
    package let idempotency: IdempotencyStore
    package let clock: WallClock

    package func register() {
        routes.add(.POST, "/v1/triggers", access: .operator, create)
        routes.add(.GET, "/v1/triggers", access: .viewer, list)
        routes.add(.GET, "/v1/triggers/{id}", access: .viewer, read)
        routes.add(.PATCH, "/v1/triggers/{id}", access: .operator, patch)
        routes.add(.DELETE, "/v1/triggers/{id}", access: .operator, delete)
    }

    package func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let key = try IdempotencyKey.from(request)
        let body = try request.decodeValidated(TriggerRequest.self) { $0.validate() }
        let now = clock.now()
        let make = { (c: PostgresConnection) throws -> IdempotencyStore.StoredAnswer in
            IdempotencyStore.StoredAnswer(status: 201, body: try WireJSON.bytes(try triggers.insert(id: UUID(), request: body, now: now, on: c)))
        }
        var replayed = false
        let answer: IdempotencyStore.StoredAnswer
        if let key {
            switch try idempotency.run(scope: "POST /v1/triggers", key: key, requestBody: request.body, now: now,
                                       create: { c in let a = try make(c); return (a, a) }, replay: { _, stored in stored }) {
            case .fresh(let a): answer = a
            case .replay(let a): answer = a; replayed = true
            case .keyReused:
                throw HTTPError(status: 422, code: "idempotency_key_reused", detail: "This Idempotency-Key was used with a different request body.",
                                errors: [FieldError(field: "Idempotency-Key", message: "was already used with a different body")])
            }
        } else {
            answer = try idempotency.unkeyed(make)
        }
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        if replayed { headers.set("Idempotent-Replayed", "true") }
        if let created = try? WireJSON.decode(TriggerView.self, from: answer.body) {
            headers.set("Location", "/v1/triggers/\(created.id.uuidString.lowercased())")
            headers.set("ETag", created.etag)
        }
        return HTTPResponse(status: answer.status, headers: headers, body: answer.body)
    }

    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let query = try ListQuery(request)
        return try .body(try triggers.list(limit: query.limit, after: query.after))
    }

    package func read(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard let trigger = try triggers.find(id) else { throw HTTPError.notFound("No trigger \(id.uuidString.lowercased()).") }
        var headers = HTTPHeaders()
        headers.set("ETag", trigger.etag)
        return try .body(trigger, headers: headers)
    }

    package func patch(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        let (current, expected) = try expectedVersion(request, of: id)
        let patch = try request.decodeJSON(TriggerPatch.self, using: WireJSON.decoder)
        var merged = patch.applied(to: current.spec)
        merged.enabled = patch.enabled ?? current.enabled
        let issues = merged.validate()
        if !issues.isEmpty { throw HTTPError.validation(issues.map { FieldError(field: $0.field, message: $0.message) }) }
        switch try triggers.update(id, request: merged, expectedVersion: expected ?? current.version, now: clock.now()) {
        case .changed(let trigger):
            var headers = HTTPHeaders()
            headers.set("ETag", trigger.etag)
            return try .body(trigger, headers: headers)
        case .notFound, .deleted:
            throw HTTPError.notFound("No trigger \(id.uuidString.lowercased()).")
        case .versionMismatch(let version):
            throw Self.precondition(current: version)
        }
    }

    package func delete(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        let (_, expected) = try expectedVersion(request, of: id)
        switch try triggers.delete(id, expectedVersion: expected) {
        case .deleted, .changed: return .noContent
        case .notFound: throw HTTPError.notFound("No trigger \(id.uuidString.lowercased()).")
        case .versionMismatch(let version): throw Self.precondition(current: version)
        }
    }

    /// The trigger as it is now, and the version `If-Match` matched (nil: no `If-Match`). No such trigger is a 404,
    /// a tag that does not match a 412.
    private func expectedVersion(_ request: HTTPRequest, of id: UUID) throws -> (TriggerView, Int?) {
        let condition = try request.ifMatch()
        guard let trigger = try triggers.find(id) else { throw HTTPError.notFound("No trigger \(id.uuidString.lowercased()).") }
        guard condition != .absent else { return (trigger, nil) }
        guard condition.matches(current: trigger.etag) else { throw Self.precondition(current: trigger.version) }
        return (trigger, trigger.version)
    }

    private static func precondition(current: Int) -> HTTPError {
        var headers = HTTPHeaders()
        headers.set("ETag", "\"v\(current)\"")
        return HTTPError(status: 412, code: "precondition_failed",
                         detail: "If-Match does not match the trigger's current version \"v\(current)\"; read it again and retry.",
                         headers: headers)
    }
}
