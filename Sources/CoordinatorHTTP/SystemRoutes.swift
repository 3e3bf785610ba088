import BundledResources
import CoordinatorStore
import Foundation
import HTTPServer

/// Liveness, readiness, the contract and the metrics: unauthenticated, for probes and scrapers.
package struct SystemRoutes: Sendable {
    package let routes: RouteRegistrar
    package let health: DatabaseHealth
    /// A document to serve instead of the compiled-in one; nil serves the compiled-in one.
    package let openAPIPath: String?
    /// nil while the process can serve; otherwise why it cannot recover (then `/healthz` fails, so the
    /// process supervisor restarts it).
    package let liveness: @Sendable () -> String?

    package func register() {
        // Probes and scrapes bypass the registrar's metrics and audit, not its query check.
        routes.router.add(.GET, "/healthz", options: RouteOptions(authorize: routes.authorizer(.open, method: .GET, pattern: "/healthz"))) { [liveness] request in
            if let reason = liveness() {
                throw HTTPError(status: 503, code: "unhealthy", detail: reason)
            }
            return .text("ok\n")
        }
        routes.add(.GET, "/readyz", access: .open, readiness)
        routes.add(.GET, "/openapi.yaml", access: .open, contract)
        routes.router.add(.GET, "/metrics", options: RouteOptions(authorize: routes.authorizer(.open, method: .GET, pattern: "/metrics"))) { [metrics = routes.metrics] _ in
            .text(metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }

    /// Ready means: the database answers and every migration this build knows is applied.
    package func readiness(_ request: HTTPRequest) throws -> HTTPResponse {
        do {
            let pending = try health.pendingMigrations()
            guard pending.isEmpty else {
                throw HTTPError.serviceUnavailable("Migrations pending: \(pending.joined(separator: ", ")).", retryAfter: 5)
            }
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError.serviceUnavailable("The database is not reachable.", retryAfter: 1)
        }
        return .text("ready\n")
    }

    package func contract(_ request: HTTPRequest) throws -> HTTPResponse {
        let body: [UInt8]
        if let openAPIPath {
            guard let data = FileManager.default.contents(atPath: openAPIPath) else {
                throw HTTPError.notFound("The OpenAPI document \(openAPIPath) given to this coordinator cannot be read.")
            }
            body = Array(data)
        } else {
            body = Array(BundledResources.openAPIDocument.utf8)
        }
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/yaml")
        return HTTPResponse(status: 200, headers: headers, body: body)
    }
}
