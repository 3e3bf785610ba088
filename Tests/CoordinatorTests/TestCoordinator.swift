import Coordinator
import CoordinatorDomain
import Foundation
import HTTPServer
import PostgresClient
import Rollout
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real coordinator on loopback (ephemeral port) over a fresh database of the test PostgreSQL cluster.
final class TestCoordinator: Sendable {
    static let adminKey = "test-admin-key-0123456789abcdefghijklmnop"

    let app: CoordinatorApp
    let database: PostgresConfiguration
    let dataDirectory: String
    let tls: Bool

    /// A coordinator on a fresh database, or a second replica on `sharing`'s database.
    convenience init(sharing other: TestCoordinator? = nil, threads: Int = 8, modelUploadLimit: Int? = nil,
                     replansFleetInBackground: Bool = true, tls: TLSConfiguration? = nil) throws {
        try self.init(database: try other?.database ?? EmbeddedPostgres.sharedForTests(), threads: threads,
                      modelUploadLimit: modelUploadLimit, replansFleetInBackground: replansFleetInBackground, tls: tls)
    }

    /// - Parameters:
    ///   - port: 0 for an ephemeral one; a coordinator restarted on the same database passes the first one's port.
    ///   - clock: this replica's clock (a skewed one shows that leases follow the database's clock).
    ///   - tls: serve HTTPS with this certificate (`baseURL` is then https://localhost:port).
    init(database: PostgresConfiguration, threads: Int = 8, modelUploadLimit: Int? = nil, replansFleetInBackground: Bool = true,
         port: Int = 0, clock: WallClock = .system, tls: TLSConfiguration? = nil) throws {
        self.database = database
        dataDirectory = NSTemporaryDirectory() + "fleetadapt-coordinator-test-" + UUID().uuidString
        var config = CoordinatorConfiguration(
            host: "127.0.0.1", port: port, dataDirectory: dataDirectory, database: .external(database),
            adminKey: Self.adminKey, threadPoolSize: threads, maxDatabaseConnections: threads, accessLog: false)
        // Retries come back within milliseconds so expiry tests need not sleep for attempt^4 seconds.
        config.backoff = Backoff(scale: 0.001, jitter: 0.1)
        // Leases outlive a test on a loaded machine; tests of expiry name their `lease_s` or expire leases in SQL.
        config.defaultLeaseSeconds = 600
        if let modelUploadLimit { config.modelUploadLimitBytes = modelUploadLimit }
        config.replansFleetInBackground = replansFleetInBackground
        config.tls = tls
        self.tls = tls != nil
        app = try CoordinatorApp(configuration: config, clock: clock)
    }

    /// Runs SQL on the test database directly (fixtures and checks the API does not offer).
    func sql(_ q: PostgresQuery) throws -> PostgresResult {
        let pool = PostgresPool(configuration: database, maxConnections: 1)
        defer { pool.close() }
        return try pool.query(q)
    }

    /// A model row for campaigns to point at (the package registry has its own tests). Its manifest declares a
    /// small elastic network (`fixtureManifestJSON`), so artifacts are checked against it like a real package's.
    func insertModel() throws -> String {
        let id = UUID()
        let content = Array("fixture package \(id)".utf8)
        let digest = try sql("SELECT sha256(\(content)) AS d").rows[0].decode("d", as: [UInt8].self)
        _ = try sql("""
            WITH blob AS (INSERT INTO model_blobs (sha256, size_bytes, content, created_at) VALUES (\(digest), \(content.count), \(content), now()))
            INSERT INTO models (id, name, package_sha256, size_bytes, manifest, combination_count, created_at)
            VALUES (\(id), 'fixture', \(digest), \(content.count), \(Self.fixtureManifestJSON)::jsonb, 1, now())
            """)
        return id.uuidString.lowercased()
    }

    deinit {
        app.shutdown()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    var baseURL: String { tls ? "https://localhost:\(app.port)" : "http://127.0.0.1:\(app.port)" }

    /// A separate pool on the same database, to check what the API left behind.
    func count(_ table: String) throws -> Int {
        let pool = PostgresPool(configuration: database, maxConnections: 1)
        defer { pool.close() }
        return try pool.query("SELECT count(*)::bigint AS n FROM \(unsafeRaw: table)").rows[0].decode("n", as: Int.self)
    }

    func request(_ method: String, _ path: String, token: String? = TestCoordinator.adminKey, json: String? = nil,
                 body: Data? = nil, headers: [String: String] = [:]) async throws -> TestResponse {
        var headers = headers
        if json != nil, headers["Content-Type"] == nil { headers["Content-Type"] = "application/json" }
        return try await Self.send(method, url: baseURL + path, token: token, body: json.map { Data($0.utf8) } ?? body, headers: headers)
    }

    /// One request to any server on loopback (this coordinator, an edge server), as the tests' clients send it.
    static func send(_ method: String, url: String, token: String?, body: Data? = nil,
                     headers: [String: String] = [:]) async throws -> TestResponse {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpBody = body
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var h: [String: String] = [:]
        for (k, v) in http.allHeaderFields { h[String(describing: k).lowercased()] = String(describing: v) }
        return TestResponse(status: http.statusCode, headers: h, body: data)
    }

    /// Registers a device through the API and returns (id, token).
    func registerDevice(name: String = "cam-1", labels: [String: String] = [:], gflops: Double = 20) async throws -> (id: String, token: String) {
        let labelJSON = String(decoding: try JSONSerialization.data(withJSONObject: labels), as: UTF8.self)
        let r = try await request("POST", "/v1/devices", json: """
            {"name": "\(name)", "hardware": {"class": "jetson-tx2", "gflops": \(gflops), "memory_mb": 4096},
             "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}, "labels": \(labelJSON)}
            """)
        guard r.status == 201, let obj = r.object, let device = obj["device"] as? [String: Any],
              let id = device["id"] as? String, let token = obj["token"] as? String else {
            throw TestFailure("registration failed: \(r.status) \(r.text)")
        }
        return (id, token)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct TestResponse: Sendable {
    let status: Int
    let headers: [String: String]
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    var object: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    var problemCode: String? { object?["code"] as? String }
    var problemFields: [String] {
        ((object?["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
    }
    var isProblem: Bool { headers["content-type"]?.hasPrefix("application/problem+json") == true }
}
