import Foundation
import Testing

/// Quality gates (issue 15) through the real coordinator and a real agent: an adapt result that fails its
/// campaign's gate ends `rejected` with the measurements, counts as a failure for the wave, is not aggregated,
/// and the device keeps the adapters it ran before; the operator sees it in the campaign's job list.
@Suite(.serialized) struct QualityGateTests {
    let fleet = FleetAdaptationTests()

    func domain(_ model: String, name: String, learningRate: Double, steps: Int, gate: String? = nil) -> String {
        """
        {"name": "\(name)", "model_id": "\(model)", "selector": {"labels": {"fleet": "gate"}},
         "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 100},
         "job": {"loss": "tent", "steps": \(steps), "timeout_s": 600, "max_attempts": 1, "batch_size": 32, "learning_rate": \(learningRate)}
         \(gate.map { #", "gate": \#($0)"# } ?? "")}
        """
    }

    func campaign(_ c: TestCoordinator, _ body: String) async throws -> (campaign: String, domain: String) {
        let created = try await c.request("POST", "/v1/domains", json: body)
        #expect(created.status == 201, "\(created.text)")
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let domain = try #require((created.object?["domain"] as? [String: Any])?["id"] as? String)
        return (campaign, domain)
    }

    func jobs(_ c: TestCoordinator, _ campaign: String, query: String = "") async throws -> [[String: Any]] {
        let r = try await c.request("GET", "/v1/campaigns/\(campaign)/jobs\(query)")
        #expect(r.status == 200, "\(r.text)")
        return try #require(r.object?["items"] as? [[String: Any]])
    }

    func adapters(_ c: TestCoordinator, _ device: String) async throws -> String? {
        let config = try #require(try await c.request("GET", "/v1/devices/\(device)/config").object)
        return ((config["adapters"] as? [String: Any])?["domain_id"] as? String)?.lowercased()
    }

    /// A sound adaptation passes the default gate and the device runs its adapters; then a campaign whose gate
    /// asks for more than any adaptation gives is rejected: same device, same data, and it keeps the first
    /// campaign's adapters. Then a harmful setting (TENT at a learning rate 1,000× the sound one, for many steps)
    /// under the default gate.
    @Test func aFailingResultIsRejectedAndTheDeviceKeepsItsAdapters() async throws {
        let c = try TestCoordinator()
        let model = try await FleetAdaptationTests.publish(c)
        let (device, token) = try await c.registerDevice(name: "gated", labels: ["fleet": "gate"], gflops: 2)
        let data = try FleetAdaptationTests.deviceData(30)
        let agent = try FleetAdaptationTests.startAgent(c, token: token, data: data, maxJobs: 10)
        defer { if agent.isRunning { agent.terminate() } }

        let good = try await campaign(c, domain(model, name: "sound", learningRate: 0.002, steps: 40))
        try await fleet.waitFor("the sound campaign") {
            try await c.request("GET", "/v1/campaigns/\(good.campaign)").object?["status"] as? String == "completed"
        }
        let passed = try await jobs(c, good.campaign)
        #expect(passed.first?["state"] as? String == "succeeded")
        let verdict = try #require(passed.first?["gate"] as? [String: Any])
        #expect(verdict["passed"] as? Bool == true, "\(verdict)")
        #expect((verdict["entropy_drop"] as? Double ?? 0) > 0)
        #expect((verdict["diversity_ratio"] as? Double ?? 0) > 0.5, "the agent measures diversity: \(verdict)")
        // The device's 300 images have labels: the agent trained on 225 and held 75 out, and accuracy on those decided.
        #expect(verdict["criterion"] as? String == "heldout_accuracy", "\(verdict)")
        #expect(verdict["heldout_samples"] as? Int == 75)
        #expect(verdict["accuracy_drop"] is Double && verdict["accuracy_allowance"] is Double, "\(verdict)")
        #expect(try await adapters(c, device) == good.domain.lowercased())
        // What the device runs: model.onnx, written once the coordinator accepted the result.
        let onnx = data + "/model.onnx"
        try await fleet.waitFor("the agent's model.onnx") { FileManager.default.fileExists(atPath: onnx) }
        let goodModel = try Data(contentsOf: URL(fileURLWithPath: onnx))

        let strict = try await campaign(c, domain(model, name: "strict", learningRate: 0.002, steps: 40, gate: #"{"min_entropy_drop": 50}"#))
        try await fleet.waitFor("the strict campaign's job to end") {
            try await jobs(c, strict.campaign).first?["state"] as? String == "rejected"
        }
        let rejected = try await jobs(c, strict.campaign, query: "?state=rejected")
        #expect(rejected.count == 1)
        let measured = try #require(rejected.first?["gate"] as? [String: Any])
        #expect(measured["passed"] as? Bool == false)
        #expect((measured["reasons"] as? [String])?.first?.contains("entropy") == true, "\(measured)")
        #expect(rejected.first?["outcome"] as? String == "succeeded", "the device reported success; the gate refused it")
        #expect(try await jobs(c, strict.campaign, query: "?state=succeeded").isEmpty)
        // Counted against the wave: the campaign pauses under its 100% success threshold rather than completing.
        try await fleet.waitFor("the strict campaign to pause") {
            try await c.request("GET", "/v1/campaigns/\(strict.campaign)").object?["status"] as? String == "paused"
        }
        #expect(try c.count("domain_adapters WHERE domain_id = '\(strict.domain)'") == 0, "not aggregated")
        #expect(try await adapters(c, device) == good.domain.lowercased(), "the device keeps its previous adapters")
        let badState = try await c.request("GET", "/v1/campaigns/\(strict.campaign)/jobs?state=bogus")
        #expect(badState.status == 400 && badState.problemFields == ["state"])
        #expect(try await c.request("GET", "/v1/campaigns/\(UUID().uuidString.lowercased())/jobs").status == 404)

        // The operator's list of campaigns, by status.
        let paused = try await c.request("GET", "/v1/campaigns?status=paused")
        #expect((paused.object?["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [strict.campaign])
        let byDomain = try await c.request("GET", "/v1/campaigns?domain_id=\(good.domain)")
        #expect((byDomain.object?["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [good.campaign])
        #expect(try await c.request("GET", "/v1/campaigns?status=bogus").problemFields == ["status"])

        // A harmful setting under the default gate.
        let harmful = try await campaign(c, domain(model, name: "harmful", learningRate: 2, steps: 150))
        try await fleet.waitFor("the harmful campaign's job to end") {
            ["rejected", "succeeded", "failed"].contains(try await jobs(c, harmful.campaign).first?["state"] as? String ?? "")
        }
        let job = try #require(try await jobs(c, harmful.campaign).first)
        print("harmful TENT: \(job["state"] ?? "-") gate \(job["gate"] ?? "-")")
        #expect(job["state"] as? String == "rejected", "\(job)")
        let harm = try #require(job["gate"] as? [String: Any])
        // Held-out accuracy decides here, and near chance a collapse may not move it; the collapse check still rejects.
        #expect(harm["criterion"] as? String == "heldout_accuracy" && harm["heldout_samples"] as? Int == 75, "\(harm)")
        #expect((harm["reasons"] as? [String])?.isEmpty == false, "\(harm)")
        #expect(try await adapters(c, device) == good.domain.lowercased(), "the device keeps its previous adapters")
        // On the device too: neither rejected result was installed, so it still runs the sound campaign's model.
        #expect(try Data(contentsOf: URL(fileURLWithPath: onnx)) == goodModel, "the agent's model.onnx is still the sound campaign's")
    }
}
