@testable import Coordinator
import FleetAPI
import Foundation
import Testing

/// Re-plans of one device triggered concurrently (context reports, fleet re-plans) must leave the config that the
/// newest state calls for: an older reading never lands on top of a newer one.
@Suite struct ReplanConsistencyTests {
    /// A 2 GFLOP/s device needs 45.5 ms for the unpruned chain against a 30 ms budget, so only a split reaches the
    /// base accuracy; a good link makes the planner split, a useless one keeps everything on the device.
    static let fastLink = #"{"battery_pct": 80, "bandwidth_mbps": 1000, "rtt_ms": 1, "edge_server": "edge-1", "edge_server_gflops": 500}"#
    static let slowLink = #"{"battery_pct": 80, "bandwidth_mbps": 0.01, "rtt_ms": 1, "edge_server": "edge-1", "edge_server_gflops": 500}"#

    static func isSplit(_ config: TestResponse) -> Bool {
        config.object?["partition"] is [String: Any]
    }

    @Test func concurrentContextReportsLeaveTheConfigOfTheStoredContext() async throws {
        let c = try TestCoordinator()
        _ = try c.insertPlannableModel()
        let d = try await c.registerDevice(name: "racer", gflops: 2)
        let fast = try await c.request("PUT", "/v1/agent/context", token: d.token, json: Self.fastLink)
        #expect(fast.status == 200)
        #expect(Self.isSplit(try await c.request("GET", "/v1/agent/config", token: d.token)))
        #expect(try await c.request("PUT", "/v1/agent/context", token: d.token, json: Self.slowLink).status == 200)
        #expect(!Self.isSplit(try await c.request("GET", "/v1/agent/config", token: d.token)))

        for round in 0..<24 {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<8 {
                    let json = (i + round) % 2 == 0 ? Self.fastLink : Self.slowLink
                    group.addTask { try await c.request("PUT", "/v1/agent/context", token: d.token, json: json).status }
                }
                for try await status in group { #expect(status == 200) }
            }
            let device = try await c.request("GET", "/v1/devices/\(d.id)")
            let bandwidth = (device.object?["context"] as? [String: Any])?["bandwidth_mbps"] as? Double
            let config = try await c.request("GET", "/v1/devices/\(d.id)/config")
            #expect(Self.isSplit(config) == (bandwidth == 1000), "round \(round): stored bandwidth \(String(describing: bandwidth)), config \(config.text)")
        }
    }

    @Test func aFleetWriteNeverLandsOnANewerConfig() async throws {
        let c = try TestCoordinator()
        _ = try c.insertPlannableModel()
        let d = try await c.registerDevice(name: "guarded", gflops: 2)
        let id = try #require(UUID(uuidString: d.id))
        let configs = c.app.services.stores.configs
        let first = try #require(try configs.current(id))
        #expect(first.version == 1)
        var other = first.decision
        other.variants = other.variants.map { VariantChoice(block: $0.block, variant: "skip") }

        // Compared with "no config" (version 0), read before registration planned the device: refused.
        let otherJSON = String(decoding: try JSONEncoder().encode(other), as: UTF8.self)
        #expect(try configs.recordMany([(device: id, expected: 0, decisionJSON: otherJSON)], trigger: "test", now: Date()).isEmpty)
        #expect(try configs.current(id)?.version == 1)
        #expect(try configs.current(id)?.decision == first.decision)
        // Compared with the current version: written as the next one.
        #expect(try configs.recordMany([(device: id, expected: 1, decisionJSON: otherJSON)], trigger: "test", now: Date()) == [id])
        let second = try #require(try configs.current(id))
        #expect(second.version == 2)
        #expect(second.decision == other)
        #expect(second.trigger == "test")
    }

    /// A fleet re-plan writes in one bulk write; re-planning again changes nothing; a subset re-plan (the
    /// adapter fan-out's path) writes only the devices whose decision moved.
    @Test func fleetReplansWriteOnlyChangedConfigs() async throws {
        // The maintenance loop would race this test's own fleet re-plans for the same writes.
        let c = try TestCoordinator(replansFleetInBackground: false)
        var ids: [UUID] = []
        for i in 0..<3 { ids.append(try #require(UUID(uuidString: try await c.registerDevice(name: "d\(i)", gflops: Double(2 + 10 * i)).id))) }
        #expect(try c.count("device_configs") == 0)
        let replanner = c.app.services.replanner
        let configs = c.app.services.stores.configs

        let first = try c.insertPlannableModel()
        #expect(try replanner.replanAll(trigger: "model_published") == (planned: 3, changed: 3))
        #expect(try replanner.replanAll(trigger: "model_published") == (planned: 3, changed: 0))
        for id in ids {
            let config = try #require(try configs.current(id))
            #expect(config.version == 1)
            #expect(config.trigger == "model_published")
            #expect(config.decision.modelID.uuidString.lowercased() == first)
            #expect(config.decision.variants.map(\.block) == ["block0", "block1", "block2", "block3", "block4"])
        }

        // A second model moves nobody: a fleet re-plan keeps each device on its config's model; moving it to
        // another is a release's (`replan(devices:to:)`).
        let second = try c.insertPlannableModel(baseAccuracy: 0.92)
        #expect(try replanner.replanAll(trigger: "model_published") == (planned: 3, changed: 0))
        #expect(try replanner.replan(devices: ids, trigger: "release", to: UUID(uuidString: second)!) == (planned: 3, changed: 3))
        for id in ids {
            #expect(try configs.current(id)?.decision.modelID.uuidString.lowercased() == second)
            #expect(try configs.history(id, limit: 10, before: nil).items.map(\.version) == [2, 1])
        }
        #expect(try replanner.replanAll(trigger: "model_published") == (planned: 3, changed: 0), "each stays on the model it was moved to")

        // A budget changed behind the API's back: only that device moves.
        _ = try c.sql("UPDATE devices SET latency_budget_ms = 4 WHERE id = \(ids[0])")
        #expect(try replanner.replan(devices: [ids[0], ids[1]], trigger: "adapters") == (planned: 2, changed: 1))
        #expect(try configs.current(ids[0])?.version == 3)
        #expect(try configs.current(ids[0])?.trigger == "adapters")
        #expect(try configs.current(ids[1])?.version == 2)
        #expect(try replanner.replan(devices: [], trigger: "adapters") == (planned: 0, changed: 0))
    }
}
