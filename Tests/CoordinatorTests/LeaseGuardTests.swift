import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient
import Rollout
import Testing

/// The guards the lease and fan-out statements keep since they were made cheaper: a device holding a job gets no
/// second one, a campaign's per-minute limit holds, and a fan-out's jobs still need their device and campaign to
/// exist (checked for the whole set instead of by a trigger per row). Through the real coordinator and PostgreSQL.
@Suite struct LeaseGuardTests {
    func domainBody(model: String, label: String, maxPerMinute: Int? = nil) -> String {
        let limit = maxPerMinute.map { #", "max_per_minute": \#($0)"# } ?? ""
        return """
            {"name": "fog-\(label)", "model_id": "\(model)", "selector": {"labels": {"fleet": "\(label)"}},
             "rollout": {"canary_pct": 100\(limit)}, "job": {"loss": "tent", "steps": 5, "timeout_s": 600, "max_attempts": 3}}
            """
    }

    func lease(_ c: TestCoordinator, _ token: String) async throws -> [String: Any]? {
        let r = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: token)
        if r.status == 204 { return nil }
        guard r.status == 200 else { throw TestFailure("lease: \(r.status) \(r.text)") }
        return r.object
    }

    @Test func aDeviceHoldingAJobGetsNoSecondOneUntilItReports() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        let device = try await c.registerDevice(name: "holder", labels: ["fleet": "hold"])
        for _ in 0..<2 {
            #expect(try await c.request("POST", "/v1/domains", json: domainBody(model: model, label: "hold")).status == 201)
        }
        let first = try #require(try await lease(c, device.token))
        #expect(try await lease(c, device.token) == nil)
        #expect(try c.count("jobs WHERE state = 'leased'") == 1)
        let job = try #require(first["id"] as? String), attempt = try #require(first["attempt"] as? Int)
        let failed = try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: device.token,
                                         json: #"{"attempt": \#(attempt), "outcome": "failed", "error": "test"}"#)
        #expect(failed.status == 200)
        // The failed job waits out its backoff (milliseconds in tests); the other campaign's job is free now.
        var next: [String: Any]?
        for _ in 0..<50 where next == nil {
            next = try await lease(c, device.token)
            if next == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(next != nil)
        #expect(try c.count("jobs WHERE state = 'leased'") == 1)
    }

    @Test func aCampaignsPerMinuteLimitHolds() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        var tokens: [String] = []
        for i in 0..<3 { tokens.append(try await c.registerDevice(name: "rate-\(i)", labels: ["fleet": "rate"]).token) }
        #expect(try await c.request("POST", "/v1/domains", json: domainBody(model: model, label: "rate", maxPerMinute: 2)).status == 201)
        var leased = 0
        for token in tokens where try await lease(c, token) != nil { leased += 1 }
        #expect(leased == 2)
    }

    @Test func fanOutJobsStillNeedTheirDeviceAndCampaign() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        _ = try await c.registerDevice(name: "fk", labels: ["fleet": "fk"])
        let created = try await c.request("POST", "/v1/domains", json: domainBody(model: model, label: "fk"))
        let campaignText = (created.object?["campaign"] as? [String: Any])?["id"] as? String
        let campaign = try #require(campaignText.flatMap(UUID.init(uuidString:)))
        let jobs = JobStore(pool: PostgresPool(configuration: c.database, maxConnections: 1))
        let document = JobDocument(kind: .adapt, modelID: try #require(UUID(uuidString: model)), domainID: UUID(), domainName: "fk",
                                   variants: [], loss: .tent, steps: 5, learningRate: 0.01, batchSize: 8)
        let before = try c.count("jobs")
        let deviceText = try c.sql("SELECT id::text AS id FROM devices LIMIT 1").rows[0].decode("id", as: String.self)
        let known = try #require(UUID(uuidString: deviceText))
        // An unknown device in a real campaign, then a real device in an unknown campaign.
        for (campaignID, device) in [(campaign, UUID()), (UUID(), known)] {
            let error = #expect(throws: PostgresError.self) {
                try jobs.pool.withTransaction { conn in
                    try jobs.insertQueued(campaign: campaignID, targets: [RolloutPlan.Target(deviceID: device, wave: 0, document: document)],
                                          maxAttempts: 3, timeoutS: 600, leaseS: 60, on: conn)
                }
            }
            #expect(error?.sqlState == "23503")
        }
        #expect(try c.count("jobs") == before)
    }
}
