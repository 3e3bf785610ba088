@testable import Coordinator
import Foundation
import Testing

/// Configs over real HTTP: planned at registration, on publish and on context changes; versioned only when the
/// decision changes; explained; what-if plans without side effects.
@Suite struct ConfigTests {
    static func publish(_ c: TestCoordinator) async throws -> String { try await FleetAdaptationTests.publish(c) }

    static func register(_ c: TestCoordinator, name: String, gflops: Double, latency: Double = 30, memory: Double = 256,
                         energy: Double? = nil) async throws -> (id: String, token: String) {
        let energyField = energy.map { ", \"energy_budget_mj\": \($0)" } ?? ""
        let r = try await c.request("POST", "/v1/devices", json: """
            {"name": "\(name)", "hardware": {"class": "jetson-tx2", "gflops": \(gflops), "memory_mb": 4096},
             "constraints": {"latency_budget_ms": \(latency), "memory_budget_mb": \(memory)\(energyField)}}
            """)
        guard r.status == 201, let obj = r.object, let device = obj["device"] as? [String: Any],
              let id = device["id"] as? String, let token = obj["token"] as? String else { throw TestFailure("registration: \(r.status) \(r.text)") }
        return (id, token)
    }

    @Test func configsArePlannedOnPublishAndRegistrationAndServedWithETags() async throws {
        let c = try TestCoordinator()
        let early = try await Self.register(c, name: "early", gflops: 20)
        let none = try await c.request("GET", "/v1/devices/\(early.id)/config")
        #expect(none.status == 404)
        #expect(none.text.contains("no_config"))

        let model = try await Self.publish(c)
        // The fleet is brought to the new model by the maintenance loop, moments after the upload answered.
        var first = try await c.request("GET", "/v1/devices/\(early.id)/config")
        let deadline = Date().addingTimeInterval(120)
        while first.status == 404 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
            first = try await c.request("GET", "/v1/devices/\(early.id)/config")
        }
        #expect(first.status == 200, "\(first.text)")
        let body = try #require(first.object)
        #expect(body["version"] as? Int == 1)
        #expect(body["trigger"] as? String == "model_published")
        #expect(body["model_id"] as? String == model)
        #expect((body["variants"] as? [[String: Any]])?.map { $0["block"] as? String } == ["blocks.0", "blocks.1", "blocks.2"])
        #expect(body["feasible"] as? Bool == true)
        #expect((body["predicted"] as? [String: Any])?["latency_ms"] as? Double ?? 1e9 <= 30)
        #expect(!(body["reason"] as? String ?? "").isEmpty)

        let late = try await Self.register(c, name: "late", gflops: 20)
        let own = try await c.request("GET", "/v1/agent/config", token: late.token)
        #expect(own.status == 200)
        #expect(own.object?["trigger"] as? String == "registration")
        #expect(own.object?["device_id"] as? String == late.id)

        let etag = try #require(own.headers["etag"])
        let cached = try await c.request("GET", "/v1/agent/config", token: late.token, headers: ["If-None-Match": etag])
        #expect(cached.status == 304)
        // A device reads only its own config; admin routes refuse device tokens.
        #expect(try await c.request("GET", "/v1/devices/\(early.id)/config", token: late.token).status == 403)
        #expect(try await c.request("GET", "/v1/devices/\(UUID().uuidString)/config").status == 404)
        #expect(try await c.request("GET", "/v1/devices/not-a-uuid/config").status == 400)
    }

    /// A slow device with a fast edge server: a good link makes the planner split the network, a poor one keeps
    /// it on the device. The same context twice changes nothing; every change is a new version, old ones kept.
    @Test func contextChangesTheVersionOnlyWhenTheDecisionChanges() async throws {
        let c = try TestCoordinator()
        _ = try await Self.publish(c)
        let d = try await Self.register(c, name: "slow", gflops: 0.05, latency: 20)
        func put(_ json: String) async throws -> [String: Any] {
            let r = try await c.request("PUT", "/v1/agent/context", token: d.token, json: json)
            #expect(r.status == 200, "\(r.text)")
            return try #require(try await c.request("GET", "/v1/agent/config", token: d.token).object)
        }
        let fast = """
            {"battery_pct": 80, "bandwidth_mbps": 1000, "rtt_ms": 1, "edge_server": "edge-1", "edge_server_gflops": 500}
            """
        let a = try await put(fast)
        let partition = try #require(a["partition"] as? [String: Any], "expected a split with a fast link: \(a)")
        #expect(partition["split_after_block"] is Int)
        let versionWithEdge = try #require(a["version"] as? Int)

        let again = try await put(fast)
        #expect(again["version"] as? Int == versionWithEdge, "the same context must not make a new version")
        let battery = try await put(fast.replacingOccurrences(of: "80", with: "79"))
        #expect(battery["version"] as? Int == versionWithEdge, "a battery change that changes no decision keeps the version")

        let slowLink = try await put("""
            {"battery_pct": 80, "bandwidth_mbps": 0.01, "rtt_ms": 400, "edge_server": "edge-1", "edge_server_gflops": 500}
            """)
        #expect(slowLink["partition"] is NSNull || slowLink["partition"] == nil, "\(slowLink)")
        #expect(slowLink["version"] as? Int == versionWithEdge + 1)
        #expect(slowLink["trigger"] as? String == "context")

        let history = try await c.request("GET", "/v1/devices/\(d.id)/config/history?limit=1")
        #expect((history.object?["items"] as? [[String: Any]])?.first?["version"] as? Int == versionWithEdge + 1)
        let next = try #require(history.object?["next"] as? String)
        let older = try await c.request("GET", "/v1/devices/\(d.id)/config/history?limit=100&after=\(next)")
        let versions = (older.object?["items"] as? [[String: Any]])?.compactMap { $0["version"] as? Int }
        #expect(versions == Array((1...versionWithEdge).reversed()))
        #expect(try await c.request("GET", "/v1/devices/\(d.id)/config/history?after=x").status == 400)
    }

    /// A fleet re-plan (what a publish runs) writes nothing when no decision changed — the SQL-built identity of
    /// stored decisions equals the Swift one, partitions included — and exactly one version for a changed device.
    @Test func fleetReplanWritesOnlyChangedDecisions() async throws {
        // Counts this test's own fleet re-plans: the maintenance loop must not take their writes.
        let c = try TestCoordinator(replansFleetInBackground: false)
        _ = try await Self.publish(c)
        let split = try await Self.register(c, name: "split", gflops: 0.05, latency: 20)
        #expect(try await c.request("PUT", "/v1/agent/context", token: split.token, json: """
            {"bandwidth_mbps": 1000, "rtt_ms": 1, "edge_server": "edge-1", "edge_server_gflops": 500}
            """).status == 200)
        #expect(try await c.request("GET", "/v1/agent/config", token: split.token).object?["partition"] is [String: Any])
        let other = try await Self.register(c, name: "plain", gflops: 20)
        _ = try await Self.register(c, name: "tight", gflops: 1, latency: 0.5)
        let before = try c.count("device_configs")
        let again = try c.app.replanFleet()
        #expect(again.planned == 3 && again.changed == 0)
        #expect(try c.count("device_configs") == before)
        // A budget change the API did not see (written straight to the table) is caught by the fleet re-plan.
        _ = try c.sql("UPDATE devices SET latency_budget_ms = 0.001 WHERE id = \(UUID(uuidString: other.id)!)")
        let changed = try c.app.replanFleet()
        #expect(changed.changed == 1)
        let config = try #require(try await c.request("GET", "/v1/devices/\(other.id)/config").object)
        #expect(config["version"] as? Int == 2)
        #expect(config["trigger"] as? String == "model_published")
    }

    /// The first model a fleet gets plans every device that has no config, through the maintenance loop; a newer
    /// model moves nobody (a release does), also not on a second replica that starts later on the same database and
    /// runs its own catch-up; and with two models a newly registered device waits for a release.
    @Test func theFirstModelPlansTheFleetAndANewerOneMovesNobody() async throws {
        let c = try TestCoordinator()
        var ids: [String] = []
        for i in 0..<5 { ids.append(try await c.registerDevice(name: "f\(i)", gflops: Double(1 + i)).id) }
        #expect(try c.count("device_configs") == 0)
        func onModel(_ model: String) throws -> Int {
            try c.count("""
                (SELECT DISTINCT ON (device_id) device_id, model_id FROM device_configs ORDER BY device_id, version DESC) AS cur
                WHERE cur.model_id = '\(model)'
                """)
        }
        let first = try c.insertPlannableModel()
        let deadline = Date().addingTimeInterval(120)
        while try onModel(first) < ids.count && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try onModel(first) == ids.count)
        #expect(try c.count("device_configs WHERE trigger = 'model_published'") == ids.count)

        let newer = try c.insertPlannableModel(baseAccuracy: 0.95)
        #expect(try c.app.services.replanner.catchUp() == 0)
        let replica = try TestCoordinator(sharing: c)
        #expect(try replica.app.services.replanner.catchUp() == 0, "a fresh replica's catch-up moves nobody either")
        #expect(try replica.app.services.replanner.replanAll(trigger: "model_published").changed == 0)
        #expect(try onModel(first) == ids.count)
        #expect(try onModel(newer) == 0)
        #expect(try c.count("device_configs") == ids.count)

        let late = try await c.registerDevice(name: "late", gflops: 3)
        let config = try await c.request("GET", "/v1/devices/\(late.id)/config")
        #expect(config.status == 404, "two models and no release: the operator chooses (\(config.text))")
        #expect(config.problemCode == "no_config")
    }

    @Test func infeasibleBudgetsAreExplained() async throws {
        let c = try TestCoordinator()
        _ = try await Self.publish(c)
        let d = try await Self.register(c, name: "tiny", gflops: 0.001, latency: 0.5, memory: 0.001)
        let r = try await c.request("GET", "/v1/devices/\(d.id)/config")
        let body = try #require(r.object)
        #expect(body["feasible"] as? Bool == false)
        #expect(["latency", "memory"].contains(body["binding_constraint"] as? String ?? ""), "\(body)")
        #expect((body["reason"] as? String ?? "").count > 20)
    }

    /// What-if plans: no side effects, looser budgets never lower the predicted accuracy, bad input named.
    @Test func whatIfPlansHaveNoSideEffectsAndValidate() async throws {
        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        _ = try await Self.register(c, name: "one", gflops: 5)
        let before = try c.count("device_configs")
        var last = -1.0
        for budget in [0.5, 1, 2, 4, 8, 16, 64, 1000] {
            let r = try await c.request("POST", "/v1/plan", json: """
                {"model_id": "\(model)", "hardware": {"class": "phone", "gflops": 1, "memory_mb": 2048},
                 "constraints": {"latency_budget_ms": \(budget), "memory_budget_mb": 64}}
                """)
            #expect(r.status == 200, "\(r.text)")
            let accuracy = (r.object?["predicted"] as? [String: Any])?["accuracy"] as? Double ?? -1
            if r.object?["feasible"] as? Bool == true {
                #expect(accuracy >= last - 1e-12, "budget \(budget): \(accuracy) < \(last)")
                last = accuracy
            }
        }
        #expect(last > 0)
        #expect(try c.count("device_configs") == before)

        let bad: [(String, String)] = [
            (#"{"hardware": {"class": "phone", "gflops": -1, "memory_mb": 2048}, "constraints": {"latency_budget_ms": 5, "memory_budget_mb": 64}}"#, "hardware.gflops"),
            (#"{"hardware": {"class": "phone", "gflops": 1, "memory_mb": 2048}, "constraints": {"latency_budget_ms": 5, "memory_budget_mb": 64}, "measured_latencies_ms": [[1]]}"#, "measured_latencies_ms"),
            ("{\"model_id\": \"\(UUID().uuidString)\", \"hardware\": {\"class\": \"phone\", \"gflops\": 1, \"memory_mb\": 2048}, \"constraints\": {\"latency_budget_ms\": 5, \"memory_budget_mb\": 64}}", "model_id"),
            (#"{"hardware": {"class": "phone", "gflops": 1, "memory_mb": 2048}, "constraints": {"latency_budget_ms": 5, "memory_budget_mb": 64}, "context": {"edge_server_gflops": 0}}"#, "context.edge_server_gflops"),
            (#"{"hardware": 3}"#, "hardware"),
            // Denormal throughputs would make every estimate overflow (found by schemathesis as a 500).
            (#"{"hardware": {"class": "a", "gflops": 5e-324, "memory_mb": 1}, "constraints": {"latency_budget_ms": 5e-324, "memory_budget_mb": 5e-324}}"#, "hardware.gflops"),
        ]
        for (json, field) in bad {
            let r = try await c.request("POST", "/v1/plan", json: json)
            #expect((400...499).contains(r.status), "\(field): \(r.status)")
            #expect(r.text.contains("\"\(field)"), "\(field): \(r.text)")
        }
        #expect(try await c.request("POST", "/v1/plan", token: nil, json: "{}").status == 401)
        // A link too thin to carry anything is no link: planned on the device, never a 5xx.
        let thin = try await c.request("POST", "/v1/plan", json: """
            {"hardware": {"class": "phone", "gflops": 0.001, "memory_mb": 2048}, "constraints": {"latency_budget_ms": 5e-324, "memory_budget_mb": 64},
             "context": {"edge_server": "e", "bandwidth_mbps": 5e-324, "edge_server_gflops": 0.001, "rtt_ms": 600000}}
            """)
        #expect(thin.status == 200, "\(thin.text)")
        #expect(thin.object?["partition"] is NSNull)
        #expect(try c.count("device_configs") == before)
    }

    /// A campaign's job documents carry each device's planned combination, and an energy budget caps the steps.
    @Test func jobDocumentsCarryThePlannedCombinationAndEnergyCap() async throws {
        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        let d = try await Self.register(c, name: "planned", gflops: 2, latency: 5, energy: 0.5)
        let config = try #require(try await c.request("GET", "/v1/devices/\(d.id)/config").object)
        let planned = (config["variants"] as? [[String: Any]])?.compactMap { $0["variant"] as? String }
        let r = try await c.request("POST", "/v1/domains", json: """
            {"name": "fog", "model_id": "\(model)", "selector": {"device_ids": ["\(d.id)"]},
             "job": {"loss": "tent", "steps": 100000, "timeout_s": 600, "max_attempts": 3}}
            """)
        #expect(r.status == 201, "\(r.text)")
        let row = try c.sql("SELECT document::text AS d FROM jobs WHERE device_id = \(UUID(uuidString: d.id)!)").rows[0]
        let document = try #require(try JSONSerialization.jsonObject(with: Data(try row.decode("d", as: String.self).utf8)) as? [String: Any])
        #expect(document["variants"] as? [String] == planned)
        let steps = try #require(document["steps"] as? Int)
        #expect(steps < 100000)
        #expect((document["budget_note"] as? String ?? "").contains("energy budget"), "\(document)")
    }
}
