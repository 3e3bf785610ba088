@testable import Coordinator
import Foundation
import Testing

/// Rollbacks through the real coordinator, database and agents: a release whose failure threshold trips rolls
/// itself back and every device it moved is back on its previous config (same content, a new version); a campaign's
/// rollback gives a device its previous adapters back, and a later re-plan keeps them; rollbacks are idempotent and
/// work from another coordinator process on the same database (nothing of it is in memory).
@Suite(.serialized) struct RollbackTests {
    let fleet = FleetAdaptationTests()

    /// The parts of a config that say what the device runs (not its version, trigger or time).
    static func content(_ config: [String: Any]) -> String {
        var c = config
        for key in ["version", "trigger", "created_at"] { c[key] = nil }
        return String(decoding: try! JSONSerialization.data(withJSONObject: c, options: [.sortedKeys]), as: UTF8.self)
    }

    func config(_ c: TestCoordinator, _ device: String) async throws -> [String: Any] {
        try #require(try await c.request("GET", "/v1/devices/\(device)/config").object)
    }

    @Test func aReleaseRolledBackByItsThresholdPutsEveryDeviceBackOnItsPreviousConfig() async throws {
        let c = try TestCoordinator()
        let a = try #require(try await ReleaseTests.upload(c, drop: 0.01, query: "name=base").object?["id"] as? String).lowercased()
        var robots: [(id: String, token: String)] = []
        for i in 0..<3 { robots.append(try await c.registerDevice(name: "robot-\(i)", labels: ["group": "robots"])) }
        let b = try #require(try await ReleaseTests.upload(c, drop: 0.02, query: "name=base").object?["id"] as? String).lowercased()
        var before: [String: [String: Any]] = [:]
        for d in robots {
            let cfg = try await config(c, d.id)
            #expect((cfg["model_id"] as? String)?.lowercased() == a)
            before[d.id] = cfg
        }
        // One canary wave of all three; one failure in three executed is over 20%: roll back.
        let created = try await c.request("POST", "/v1/releases", json: """
            {"model_id": "\(b)", "selector": {"labels": {"group": "robots"}},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 100},
             "abort": {"failure_threshold_pct": 20, "min_executed": 3, "action": "rollback"}, "timeout_s": 300, "max_attempts": 1}
            """)
        #expect(created.status == 201, "\(created.text)")
        let release = try #require(created.object?["id"] as? String)

        // Two real agents download and measure the new model; their devices move to it.
        let agents = try robots.prefix(2).enumerated().map { i, d in
            try FleetAdaptationTests.startAgent(c, token: d.token, data: try FleetAdaptationTests.deviceData(25 + i))
        }
        defer { for p in agents where p.isRunning { p.terminate() } }
        for d in robots.prefix(2) {
            try await fleet.waitFor("robot \(d.id) to move to the released model") {
                (try await config(c, d.id)["model_id"] as? String)?.lowercased() == b
            }
        }
        // The third device's job fails (reported over the agent API with its token).
        let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: robots[2].token)
        #expect(leased.status == 200, "\(leased.text)")
        let job = try #require(leased.object?["id"] as? String), attempt = try #require(leased.object?["attempt"] as? Int)
        let failed = try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: robots[2].token,
                                         json: #"{"attempt": \#(attempt), "outcome": "failed", "error": "camera offline"}"#)
        #expect(failed.status == 200, "\(failed.text)")
        try await fleet.waitFor("the release to roll back") {
            try await c.request("GET", "/v1/releases/\(release)").object?["status"] as? String == "rolled_back"
        }
        for d in robots.prefix(2) {
            let cfg = try await config(c, d.id)
            #expect(cfg["trigger"] as? String == "rollback", "\(cfg)")
            #expect((cfg["model_id"] as? String)?.lowercased() == a, "back on the previous model")
            // History is kept: the rollback is the version after the release's, with the content of the one before it.
            let history = try #require(try await c.request("GET", "/v1/devices/\(d.id)/config/history").object?["items"] as? [[String: Any]])
            #expect(history.compactMap { $0["trigger"] as? String }.prefix(2) == ["rollback", "release"], "\(history)")
            guard history.count >= 3 else { Issue.record("history too short: \(history)"); continue }
            #expect(history[0]["version"] as? Int == (history[1]["version"] as? Int ?? -1) + 1)
            #expect(Self.content(history[0]) == Self.content(history[2]), "back on its previous config")
            #expect(Self.content(cfg) == Self.content(history[0]))
            // Before the agent reported its context the device ran the same model (the agent's report may re-plan it).
            #expect((before[d.id]?["model_id"] as? String)?.lowercased() == a)
        }
        let untouched = try await config(c, robots[2].id)
        #expect(untouched["version"] as? Int == 1 && Self.content(untouched) == Self.content(before[robots[2].id]!))

        let kinds = try await RolloutScheduleTests.events(c, "/v1/releases/\(release)").map { "\($0["kind"] ?? "-")/\($0["cause"] ?? "-")" }
        #expect(kinds == ["created/operator", "wave_released/rollout", "rollback_started/threshold", "rollback_finished/rollback"], "\(kinds)")

        // Idempotent, and answered from the database by another coordinator process: same figures, nothing written.
        let configs = try c.count("device_configs")
        let replica = try TestCoordinator(sharing: c)
        for server in [c, replica] {
            let again = try await server.request("POST", "/v1/releases/\(release)/rollback")
            #expect(again.status == 200, "\(again.text)")
            #expect(again.object?["changed_devices"] as? Int == 2 && again.object?["restored_devices"] as? Int == 2, "\(again.text)")
            #expect(again.object?["pending_devices"] as? Int == 0)
        }
        #expect(try c.count("device_configs") == configs)
        // A rolled-back release names no model for a new device any more, and cannot be paused or canceled.
        let late = try await c.registerDevice(name: "robot-late", labels: ["group": "robots"])
        #expect(try await c.request("GET", "/v1/devices/\(late.id)/config").status == 404)
        #expect(try await c.request("POST", "/v1/releases/\(release)/cancel").problemCode == "invalid_release_state")
        #expect(try await c.request("POST", "/v1/releases/\(UUID().uuidString.lowercased())/rollback").status == 404)
    }

    /// Two sound campaigns in a row on one device (real agent, real training); rolling the second back gives the
    /// device the first one's adapters back, and a context report afterwards re-plans without bringing the rolled-back
    /// adapters back. The rollback is asked of a second coordinator process, after the first one did the campaign.
    @Test func aCampaignRollbackRestoresThePreviousAdapters() async throws {
        let c = try TestCoordinator()
        let gates = QualityGateTests()
        let model = try await FleetAdaptationTests.publish(c)
        let (device, token) = try await c.registerDevice(name: "adapting", labels: ["fleet": "gate"], gflops: 2)
        let agent = try FleetAdaptationTests.startAgent(c, token: token, data: try FleetAdaptationTests.deviceData(31), maxJobs: 10)
        defer { if agent.isRunning { agent.terminate() } }

        let first = try await gates.campaign(c, gates.domain(model, name: "first", learningRate: 0.002, steps: 30))
        try await fleet.waitFor("the first campaign") {
            try await c.request("GET", "/v1/campaigns/\(first.campaign)").object?["status"] as? String == "completed"
        }
        let previous = try await config(c, device)
        #expect(try await gates.adapters(c, device) == first.domain.lowercased())
        let second = try await gates.campaign(c, gates.domain(model, name: "second", learningRate: 0.002, steps: 30))
        try await fleet.waitFor("the second campaign") {
            try await c.request("GET", "/v1/campaigns/\(second.campaign)").object?["status"] as? String == "completed"
        }
        #expect(try await gates.adapters(c, device) == second.domain.lowercased())
        let replaced = try await config(c, device)

        let restarted = try TestCoordinator(sharing: c)
        let rolled = try await restarted.request("POST", "/v1/campaigns/\(second.campaign)/rollback")
        #expect(rolled.status == 200, "\(rolled.text)")
        #expect(rolled.object?["restored_devices"] as? Int == 1 && rolled.object?["changed_devices"] as? Int == 1, "\(rolled.text)")
        #expect((rolled.object?["campaign"] as? [String: Any])?["status"] as? String == "rolled_back")
        let restored = try await config(c, device)
        #expect(try await gates.adapters(c, device) == first.domain.lowercased(), "the first campaign's adapters again: \(restored)")
        #expect(restored["version"] as? Int == (replaced["version"] as? Int ?? 0) + 1 && restored["trigger"] as? String == "rollback")
        #expect(Self.content(restored) == Self.content(previous))

        // A re-plan afterwards (the device reports its context) keeps the restored adapters.
        let context = try await c.request("PUT", "/v1/agent/context", token: token, json: #"{"battery_pct": 90}"#)
        #expect(context.status == 200 || context.status == 204, "\(context.text)")
        #expect(try await gates.adapters(c, device) == first.domain.lowercased())

        let versions = try c.count("device_configs")
        let settled = try await config(c, device)["version"] as? Int
        let again = try await c.request("POST", "/v1/campaigns/\(second.campaign)/rollback")
        #expect(again.status == 200 && again.object?["restored_devices"] as? Int == 1, "\(again.text)")
        #expect(try await config(c, device)["version"] as? Int == settled)
        #expect(try c.count("device_configs") == versions, "a second rollback writes nothing")
        let kinds = try await RolloutScheduleTests.events(c, "/v1/campaigns/\(second.campaign)").compactMap { $0["kind"] as? String }
        #expect(kinds == ["created", "wave_released", "completed", "rollback_started", "rollback_finished"], "\(kinds)")

        // A canceled campaign cannot be rolled back; an unknown one does not exist. The agent is stopped first, so it
        // cannot finish the third campaign's job before the cancel lands.
        agent.terminate()
        agent.waitUntilExit()
        let third = try await gates.campaign(c, gates.domain(model, name: "third", learningRate: 0.002, steps: 30))
        let canceled = try await c.request("POST", "/v1/campaigns/\(third.campaign)/cancel")
        #expect(canceled.status == 200, "\(canceled.text)")
        let refused = try await c.request("POST", "/v1/campaigns/\(third.campaign)/rollback")
        #expect(refused.status == 409 && refused.problemCode == "invalid_campaign_state", "\(refused.text)")
        #expect(try await c.request("POST", "/v1/campaigns/\(UUID().uuidString.lowercased())/rollback").status == 404)
        #expect(try await c.request("POST", "/v1/campaigns/not-a-uuid/rollback").problemFields == ["id"])
    }

    /// A rollback interrupted after it started (marked in the database, no device restored yet: the process died) is
    /// finished by the coordinators' periodic evaluation from what the database holds, the record of the version the
    /// release replaced; a coordinator started afterwards answers it.
    @Test func anInterruptedRollbackIsFinishedByTheNextCoordinator() async throws {
        let c = try TestCoordinator()
        let a = try #require(try await ReleaseTests.upload(c, drop: 0.01, query: "name=resume").object?["id"] as? String).lowercased()
        let d = try await c.registerDevice(name: "robot", labels: ["group": "resume"])
        let b = try #require(try await ReleaseTests.upload(c, drop: 0.02, query: "name=resume").object?["id"] as? String).lowercased()
        let created = try await c.request("POST", "/v1/releases", json: #"{"model_id": "\#(b)", "selector": {"labels": {"group": "resume"}}}"#)
        let release = try #require(created.object?["id"] as? String)
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: d.token)
        let job = try #require(leased.object?["id"] as? String), attempt = try #require(leased.object?["attempt"] as? Int)
        #expect(try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: d.token, json: #"{"attempt": \#(attempt), "outcome": "succeeded"}"#).status == 200)
        let moved = try await config(c, d.id)
        #expect((moved["model_id"] as? String)?.lowercased() == b && moved["trigger"] as? String == "release", "\(moved)")
        #expect(try c.count("campaign_config_changes WHERE campaign_id = '\(campaign)' AND replaced_version = 1") == 1, "recorded in the database")

        // As if a rollback had marked the campaign and the process had died before restoring anything.
        _ = try c.sql("UPDATE campaigns SET status = 'rolling_back', finished_at = NULL, updated_at = now() WHERE id = \(UUID(uuidString: campaign)!)")
        let next = try TestCoordinator(sharing: c)
        try await fleet.waitFor("the interrupted rollback to be finished", timeout: 60) {
            try await next.request("GET", "/v1/releases/\(release)").object?["status"] as? String == "rolled_back"
        }
        let restored = try await config(next, d.id)
        #expect(restored["trigger"] as? String == "rollback" && (restored["model_id"] as? String)?.lowercased() == a, "\(restored)")
        #expect(restored["version"] as? Int == (moved["version"] as? Int ?? 0) + 1)
        let history = try #require(try await next.request("GET", "/v1/devices/\(d.id)/config/history").object?["items"] as? [[String: Any]])
        let first = try #require(history.last)
        #expect(first["version"] as? Int == 1 && Self.content(first) == Self.content(restored))
        let answer = try await next.request("POST", "/v1/releases/\(release)/rollback")
        #expect(answer.status == 200 && answer.object?["restored_devices"] as? Int == 1 && answer.object?["pending_devices"] as? Int == 0, "\(answer.text)")
    }
}
