import Foundation
import Testing
import PostgresClient

/// Several coordinator processes on one database: leases are taken exactly once, and a restart loses nothing.
@Suite struct ReplicaTests {
    /// Inserts `n` active devices with tokens `bulk-<i>` straight into the table (registration has its own tests).
    static func bulkDevices(_ c: TestCoordinator, _ n: Int) throws -> [String] {
        _ = try c.sql("""
            INSERT INTO devices (id, name, hardware_class, gflops, memory_mb, latency_budget_ms, memory_budget_mb, labels,
                                 token_sha256, created_at, updated_at)
            SELECT gen_random_uuid(), 'bulk-' || i, 'phone', 5, 2048, 50, 100, '{"fleet": "bulk"}'::jsonb,
                   sha256(convert_to('bulk-' || i, 'UTF8')), now(), now()
            FROM generate_series(1, \(n)) AS i
            """)
        return (1...n).map { "bulk-\($0)" }
    }

    @Test func twoCoordinatorsLeaseEveryJobExactlyOnce() async throws {
        let a = try TestCoordinator(threads: 16)
        let b = try TestCoordinator(sharing: a, threads: 16)
        let model = try a.insertModel()
        let tokens = try Self.bulkDevices(a, 2000)
        let created = try await a.request("POST", "/v1/domains", json: """
            {"name": "fog", "model_id": "\(model)", "selector": {"labels": {"fleet": "bulk"}},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100},
             "job": {"loss": "tent", "steps": 5, "timeout_s": 600, "max_attempts": 3, "lease_s": 3600}}
            """)
        // The lease outlives the test even on a loaded machine (a CI run took 75 s to lease all 2,000, past the
        // default lease, and the maintenance loop rightly requeued the first ones before the final count).
        #expect(created.status == 201)
        #expect(try a.count("jobs") == 2000)

        // Every device asks both replicas at the same time; exactly one of the two may win.
        let leased = try await withThrowingTaskGroup(of: [String].self) { group in
            var results: [String] = []
            var next = 0
            func add() {
                let token = tokens[next]
                next += 1
                group.addTask {
                    async let x = a.request("GET", "/v1/agent/jobs/next?wait=0", token: token)
                    async let y = b.request("GET", "/v1/agent/jobs/next?wait=0", token: token)
                    return try await [x, y].filter { $0.status == 200 }.compactMap { $0.object?["id"] as? String }
                }
            }
            for _ in 0..<32 { add() }
            while let ids = try await group.next() {
                results += ids
                if next < tokens.count { add() }
            }
            return results
        }
        #expect(leased.count == 2000)
        #expect(Set(leased).count == 2000)
        #expect(try a.count("jobs WHERE state = 'leased' AND attempt = 1") == 2000)
    }

    @Test func restartingTheCoordinatorMidCampaignLosesAndDuplicatesNothing() async throws {
        var first: TestCoordinator? = try TestCoordinator()
        let a = first!
        let model = try a.insertModel()
        var tokens: [String] = []
        for i in 0..<4 { tokens.append(try await a.registerDevice(name: "r\(i)", labels: ["fleet": "r"]).token) }
        let created = try await a.request("POST", "/v1/domains", json: """
            {"name": "fog", "model_id": "\(model)", "selector": {"labels": {"fleet": "r"}},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100}, "job": {"loss": "tent", "steps": 5, "timeout_s": 600, "max_attempts": 3}}
            """)
        let campaignID = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        // Two devices lease, one of them finishes; then the coordinator goes away.
        let j0 = try #require(try await a.request("GET", "/v1/agent/jobs/next?wait=0", token: tokens[0]).object)
        let j1 = try #require(try await a.request("GET", "/v1/agent/jobs/next?wait=0", token: tokens[1]).object)
        #expect(try await a.uploadArtifact(job: j0["id"] as! String, attempt: 1, token: tokens[0], tensors: TestCoordinator.fixtureArtifact()).status == 201)
        #expect(try await a.request("POST", "/v1/agent/jobs/\(j0["id"] as! String)/result", token: tokens[0],
                                    json: #"{"attempt": 1, "outcome": "succeeded", "metrics": {"entropy_before": 1, "entropy_after": 0.5}}"#).status == 200)
        let database = a.database
        first = nil
        let b = try TestCoordinator(database: database)
        // The leased job is still held by its attempt, and completes on the new process.
        #expect(try await b.uploadArtifact(job: j1["id"] as! String, attempt: 1, token: tokens[1], tensors: TestCoordinator.fixtureArtifact()).status == 201)
        #expect(try await b.request("POST", "/v1/agent/jobs/\(j1["id"] as! String)/result", token: tokens[1],
                                    json: #"{"attempt": 1, "outcome": "succeeded"}"#).status == 200)
        for t in tokens[2...] {
            let job = try #require(try await b.request("GET", "/v1/agent/jobs/next?wait=0", token: t).object)
            #expect(job["attempt"] as? Int == 1)
            #expect(try await b.uploadArtifact(job: job["id"] as! String, attempt: 1, token: t, tensors: TestCoordinator.fixtureArtifact()).status == 201)
            #expect(try await b.request("POST", "/v1/agent/jobs/\(job["id"] as! String)/result", token: t,
                                        json: #"{"attempt": 1, "outcome": "succeeded"}"#).status == 200)
        }
        let view = try await b.request("GET", "/v1/campaigns/\(campaignID)")
        #expect(view.object?["status"] as? String == "completed")
        #expect((view.object?["counts"] as? [String: Int]) == ["succeeded": 4])
        #expect(try b.count("jobs") == 4)
    }
}
