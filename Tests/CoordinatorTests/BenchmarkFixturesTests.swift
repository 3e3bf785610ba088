@testable import Coordinator
import Foundation
import Testing

/// The rows `fleetadapt bench queue|plan` set up go through the stores (`CoordinatorApp.benchmarkFixtures`), so
/// the CLI holds no SQL; these are the calls the benchmarks make, on a real coordinator and database.
@Suite struct BenchmarkFixturesTests {
    @Test func benchmarkRowsAreWrittenByTheStores() async throws {
        let c = try TestCoordinator()
        let fixtures = c.app.benchmarkFixtures
        let model = try fixtures.insertModel(name: "bench")
        #expect(try c.count("models") == 1 && c.count("model_blobs") == 1)
        try fixtures.insertDevices(count: 3, tokenPrefix: "bulk-", labels: ["fleet": "bulk"])
        let second = try #require(try fixtures.deviceID(token: "bulk-2"))
        #expect(try fixtures.deviceID(token: "bulk-4") == nil)

        let created = try await c.request("POST", "/v1/domains", json: """
            {"name": "fog", "model_id": "\(model.uuidString.lowercased())", "selector": {"labels": {"fleet": "bulk"}},
             "rollout": {"canary_pct": 100}, "job": {"loss": "tent", "steps": 1, "timeout_s": 60, "max_attempts": 1}}
            """)
        #expect(created.status == 201, "\(created.text)")
        #expect(try c.count("jobs") == 3)
        #expect(try fixtures.rawCopyOfJobs() > .zero)
        #expect(try fixtures.leasedJobCount() == 0)
        // The device token the fixture wrote authenticates: its long-poll leases its job.
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: "bulk-2").status == 200)
        #expect(try fixtures.leasedJobCount() == 1)

        let third = try #require(try fixtures.deviceID(token: "bulk-3"))
        try fixtures.cancelQueuedJobs(device: third)
        try fixtures.cancelQueuedJobs(device: second)   // leased, not queued: unchanged
        let states = try c.sql("SELECT state, count(*)::bigint AS n FROM jobs GROUP BY state ORDER BY state").rows
            .map { "\(try $0.decode("state", as: String.self))=\(try $0.decode("n", as: Int.self))" }
        #expect(states == ["canceled=1", "leased=1", "queued=1"])

        try fixtures.insertVariedDevices(count: 10)
        #expect(try c.count("devices") == 13)
    }
}
