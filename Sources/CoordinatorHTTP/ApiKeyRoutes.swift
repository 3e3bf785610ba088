import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// API keys with roles (admin only): create (the key is in that answer only), list (never a secret), revoke.
package struct ApiKeyRoutes: Sendable {
    package let routes: RouteRegistrar
    package let apiKeys: ApiKeyStore
    package let clock: WallClock

    package func register() {
        routes.add(.POST, "/v1/api-keys", access: .admin, create)
        routes.add(.GET, "/v1/api-keys", access: .admin, list)
        routes.add(.DELETE, "/v1/api-keys/{id}", access: .admin, revoke)
    }

    package func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let now = clock.now()
        let body = try request.decodeValidated(ApiKeyRequest.self) { $0.validate(now: now) }
        let token = Secrets.generate(prefix: Authenticator.apiKeyPrefix)
        let key = try apiKeys.insert(id: UUID(), name: body.name!, role: Role(rawValue: body.role!)!, keyDigest: Secrets.sha256(token),
                                     expiresAt: body.expiresAt, now: now)
        var headers = HTTPHeaders()
        headers.set("Location", "/v1/api-keys/\(key.id.uuidString.lowercased())")
        headers.set("Cache-Control", "no-store")
        return try .body(ApiKeyCreated(apiKey: key, token: token), status: 201, headers: headers)
    }

    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let query = try ListQuery(request)
        return try .body(try apiKeys.list(limit: query.limit, after: query.after))
    }

    /// Revokes: the key is refused with 401 `api_key_revoked` from now on; it stays listed.
    package func revoke(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard try apiKeys.revoke(id, now: clock.now()) else { throw HTTPError.notFound("No API key \(id.uuidString.lowercased()).") }
        return .noContent
    }
}
