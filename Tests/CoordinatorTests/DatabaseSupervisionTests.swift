import Coordinator
import Foundation
import PostgresClient
import Testing

/// A coordinator on its embedded PostgreSQL restarts the cluster when it dies, and `/healthz` fails (so the
/// process's own supervisor restarts it) only when the cluster cannot be brought back.
@Suite(.serialized) struct DatabaseSupervisionTests {
    static let adminKey = "supervision-test-admin-key-0123456789abcdef"

    static func coordinator() throws -> (CoordinatorApp, String) {
        let dir = "/tmp/fleetadapt-supervised-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var config = CoordinatorConfiguration(host: "127.0.0.1", port: 0, dataDirectory: dir, database: .embedded,
                                              adminKey: adminKey, threadPoolSize: 4, maxDatabaseConnections: 4, accessLog: false)
        config.databaseSupervision = .init(checkInterval: 0.2, initialBackoff: 0.2, maxBackoff: 1, unhealthyAfter: 3)
        config.replansFleetInBackground = false
        return (try CoordinatorApp(configuration: config), dir)
    }

    static func get(_ app: CoordinatorApp, _ path: String, token: String? = adminKey) async -> Int {
        (try? await TestCoordinator.send("GET", url: "http://127.0.0.1:\(app.port)\(path)", token: token).status) ?? 0
    }

    /// Polls until `condition` holds (every 200 ms, at most `seconds`); returns whether it did.
    static func eventually(_ seconds: Double, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return await condition()
    }

    static func register(_ app: CoordinatorApp) async throws -> String {
        let r = try await TestCoordinator.send("POST", url: "http://127.0.0.1:\(app.port)/v1/devices", token: adminKey, body: Data("""
            {"name": "supervised", "hardware": {"class": "jetson-tx2", "gflops": 20, "memory_mb": 4096},
             "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}}
            """.utf8), headers: ["Content-Type": "application/json"])
        let device = try #require(r.object?["device"] as? [String: Any])
        return try #require(device["id"] as? String)
    }

    @Test func killedDatabaseIsRestarted() async throws {
        let (app, dir) = try Self.coordinator()
        defer { app.shutdown(); try? FileManager.default.removeItem(atPath: dir) }
        let id = try await Self.register(app)
        let cluster = try #require(app.embeddedDatabase)
        let before = try #require(cluster.postmasterPID)

        #expect(kill(before, SIGKILL) == 0)
        let recovered = await Self.eventually(120) {
            await Self.get(app, "/v1/devices/\(id)") == 200 && cluster.postmasterPID.map { $0 != before } == true
        }
        #expect(recovered, "the device was not readable again after the database was killed")
        #expect(app.databaseRestarts >= 1)
        #expect(await Self.get(app, "/healthz", token: nil) == 200)
        #expect(await Self.get(app, "/readyz", token: nil) == 200)
    }

    @Test func healthzFailsWhileTheDatabaseCannotBeRestartedAndRecoversAfter() async throws {
        let (app, dir) = try Self.coordinator()
        defer { app.shutdown(); try? FileManager.default.removeItem(atPath: dir) }
        let id = try await Self.register(app)
        let cluster = try #require(app.embeddedDatabase)
        // Break the server's configuration, then kill it: every restart now fails.
        let conf = cluster.dataDirectory + "/postgresql.conf"
        let original = try Data(contentsOf: URL(fileURLWithPath: conf))
        try (original + Data("\nthis line is not a setting\n".utf8)).write(to: URL(fileURLWithPath: conf))
        #expect(kill(try #require(cluster.postmasterPID), SIGKILL) == 0)

        let unhealthy = await Self.eventually(120) { await Self.get(app, "/healthz", token: nil) == 503 }
        #expect(unhealthy, "/healthz kept answering 200 although the database could not be restarted")
        #expect(await Self.get(app, "/v1/devices/\(id)") == 503)

        // Repaired, the supervisor brings it back and the process is healthy again, without a restart.
        try original.write(to: URL(fileURLWithPath: conf))
        let healthy = await Self.eventually(120) {
            let health = await Self.get(app, "/healthz", token: nil)
            let read = await Self.get(app, "/v1/devices/\(id)")
            return health == 200 && read == 200
        }
        #expect(healthy)
    }
}
