@testable import Coordinator
import CoordinatorHTTP
import FleetAPI
import Foundation
import HTTPServer
import PostgresClient
import Testing

/// The coordinator's real routes, use cases and stores on a private PostgreSQL database, called in-process through
/// `Router.respond` (the hummingbird way): `CoordinatorApp.makeRouter(services:)` needs no socket and no HTTP server.
@Suite struct InProcessRouterTests {
    /// A router over a fresh database of the test cluster, migrated; nothing listens on a port.
    final class InProcessCoordinator: Sendable {
        let pool: PostgresPool
        let services: CoordinatorServices
        let router: Router

        init() throws {
            let database = try EmbeddedPostgres.sharedForTests()
            pool = PostgresPool(configuration: database, maxConnections: 4)
            let configuration = CoordinatorConfiguration(
                host: "127.0.0.1", port: 0, dataDirectory: NSTemporaryDirectory() + "fleetadapt-in-process-" + UUID().uuidString,
                database: .external(database), adminKey: TestCoordinator.adminKey, accessLog: false)
            services = try CoordinatorApp.makeServices(pool: pool, configuration: configuration, clock: .system)
            router = CoordinatorApp.makeRouter(services: services)
        }

        deinit { pool.close() }

        /// One request through the router; `target` may carry a query (`/v1/devices?limit=1`).
        func respond(_ method: HTTPMethod, _ target: String, token: String? = TestCoordinator.adminKey, json: String? = nil,
                     headers: [String: String] = [:]) -> HTTPResponse {
            let parts = target.split(separator: "?", maxSplits: 1).map(String.init)
            var query: [String: String] = [:]
            for pair in (parts.count > 1 ? parts[1] : "").split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                query[kv[0]] = kv.count > 1 ? kv[1] : ""
            }
            var h = HTTPHeaders()
            if let token { h.set("Authorization", "Bearer \(token)") }
            if json != nil { h.set("Content-Type", "application/json") }
            for (k, v) in headers { h.set(k, v) }
            return router.respond(to: HTTPRequest(method: method, path: parts[0], query: query, headers: h,
                                                  body: Array((json ?? "").utf8), clientAddress: "127.0.0.1"))
        }

        func count(_ table: String) throws -> Int {
            try pool.query("SELECT count(*)::bigint AS n FROM \(unsafeRaw: table)").rows[0].decode("n", as: Int.self)
        }
    }

    static let registration = """
        {"name": "cam-1", "hardware": {"class": "jetson-tx2", "gflops": 20, "memory_mb": 4096},
         "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}, "labels": {"site": "a"}}
        """

    static func object(_ r: HTTPResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
    }

    static func fields(_ r: HTTPResponse) -> [String] {
        ((object(r)["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
    }

    @Test func aDeviceRegistersAndReadsBackWithoutASocket() throws {
        let c = try InProcessCoordinator()
        let created = c.respond(.POST, "/v1/devices", json: Self.registration)
        #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
        let answer = try WireJSON.decode(DeviceCreated.self, from: created.body)
        let id = answer.device.id.uuidString.lowercased()
        #expect(created.headers["Location"] == "/v1/devices/\(id)")
        #expect(created.headers["ETag"] == "\"v1\"")
        #expect(answer.token.hasPrefix("fad_"))
        #expect(try c.count("devices") == 1)

        let read = c.respond(.GET, "/v1/devices/\(id)")
        #expect(read.status == 200)
        let device = try WireJSON.decode(Device.self, from: read.body)
        #expect(device == answer.device)
        #expect(String(decoding: read.body, as: UTF8.self).contains("\"id\":\"\(id)\""), "UUIDs are lower case on the wire")

        let page = c.respond(.GET, "/v1/devices?limit=1&status=active")
        #expect(try WireJSON.decode(Page<Device>.self, from: page.body).items.map(\.id) == [answer.device.id])

        // The device's own token authenticates it on agent routes (no model is published, so it has no config yet)
        // and is refused on admin routes.
        let config = c.respond(.GET, "/v1/agent/config", token: answer.token)
        #expect(config.status == 404)
        #expect(Self.object(config)["code"] as? String == "no_config")
        #expect(c.respond(.GET, "/v1/devices", token: answer.token).status == 403)
        #expect(c.respond(.GET, "/v1/devices", token: nil).status == 401)
    }

    @Test func badRequestsAreProblemsNamingTheFieldAndWriteNothing() throws {
        let c = try InProcessCoordinator()
        let missing = c.respond(.GET, "/v1/devices/\(UUID().uuidString.lowercased())")
        #expect(missing.status == 404)
        #expect(missing.headers["Content-Type"] == "application/problem+json")

        let notUUID = c.respond(.GET, "/v1/devices/not-a-uuid")
        #expect(notUUID.status == 400)
        #expect(Self.fields(notUUID) == ["id"])

        let bad = c.respond(.POST, "/v1/devices", json: Self.registration.replacingOccurrences(of: "\"gflops\": 20", with: "\"gflops\": -1"))
        #expect(bad.status == 422)
        #expect(Self.object(bad)["code"] as? String == "validation_failed")
        #expect(Self.fields(bad) == ["hardware.gflops"])
        #expect(try c.count("devices") == 0)

        // The job's loss is a typed enum: an unknown one is refused while the body decodes, naming the field.
        let domain = """
            {"name": "fog", "model_id": "\(UUID().uuidString.lowercased())", "selector": {"labels": {"site": "a"}},
             "job": {"loss": "magic", "steps": 1, "timeout_s": 60, "max_attempts": 1}}
            """
        let loss = c.respond(.POST, "/v1/domains", json: domain)
        #expect(loss.status == 422)
        #expect(Self.fields(loss) == ["job.loss"])
        // A known loss for a model nobody published: the use case refuses it, and nothing is written.
        let model = c.respond(.POST, "/v1/domains", json: domain.replacingOccurrences(of: "magic", with: "tent"))
        #expect(model.status == 422)
        #expect(Self.object(model)["code"] as? String == "unknown_model")
        #expect(Self.fields(model) == ["model_id"])
        #expect(try c.count("domains") == 0 && c.count("campaigns") == 0 && c.count("jobs") == 0)
    }

    @Test func ifMatchGuardsPatchAndDeleteInProcess() throws {
        let c = try InProcessCoordinator()
        let created = try WireJSON.decode(DeviceCreated.self, from: c.respond(.POST, "/v1/devices", json: Self.registration).body)
        let path = "/v1/devices/\(created.device.id.uuidString.lowercased())"

        let stale = c.respond(.PATCH, path, json: #"{"name": "cam-2"}"#, headers: ["If-Match": "\"v9\""])
        #expect(stale.status == 412)
        #expect(Self.object(stale)["code"] as? String == "precondition_failed")
        #expect(stale.headers["ETag"] == "\"v1\"")

        let patched = c.respond(.PATCH, path, json: #"{"name": "cam-2"}"#, headers: ["If-Match": "\"v1\""])
        #expect(patched.status == 200)
        #expect(patched.headers["ETag"] == "\"v2\"")
        #expect(try WireJSON.decode(Device.self, from: patched.body).name == "cam-2")

        #expect(c.respond(.DELETE, path, headers: ["If-Match": "\"v1\""]).status == 412)
        #expect(c.respond(.GET, path).headers["ETag"] == "\"v2\"", "a refused DELETE changes nothing")
        #expect(c.respond(.DELETE, path, headers: ["If-Match": "\"v2\""]).status == 204)
        #expect(try WireJSON.decode(Device.self, from: c.respond(.GET, path).body).status == .decommissioned)
    }
}
