import Foundation
import HTTPServer

/// Liveness, readiness, the contract and the metrics: unauthenticated, for probes and scrapers.
struct SystemRoutes {
    let services: Services
    /// nil while the process can serve; otherwise why it cannot recover (then `/healthz` fails, so the
    /// process supervisor restarts it).
    let liveness: @Sendable () -> String?

    func register(on router: Router) {
        router.add(.GET, "/healthz") { [liveness] request in
            if let reason = liveness() {
                throw HTTPError(status: 503, code: "unhealthy", detail: reason)
            }
            return .text("ok\n")
        }
        services.route(router, .GET, "/readyz", access: .open, readiness)
        services.route(router, .GET, "/openapi.yaml", access: .open, contract)
        router.add(.GET, "/metrics") { [metrics = services.metrics] _ in
            .text(metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }

    /// Ready means: the database answers and every migration this build knows is applied.
    func readiness(_ request: HTTPRequest) throws -> HTTPResponse {
        do {
            try services.pool.ping()
            let pending = try services.migrations.pending(services.pool)
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

    func contract(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let data = FileManager.default.contents(atPath: services.openAPIPath) else {
            throw HTTPError.notFound("The OpenAPI document is not installed next to this coordinator.")
        }
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/yaml")
        return HTTPResponse(status: 200, headers: headers, body: Array(data))
    }
}
