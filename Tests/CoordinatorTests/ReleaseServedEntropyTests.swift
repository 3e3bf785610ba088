@testable import Coordinator
import ElasticModel
import Foundation
import Learning
import Testing

/// The release gate's served entropy: a release's `profile` job asks which combination its measured latencies
/// plan the device to (`POST /v1/agent/jobs/{id}/plan`, only the attempt holding the job, nothing written), and the
/// real agent reports that combination's served entropy against what the device ran before. A model that serves
/// worse is rejected and the device keeps its model; a sound one moves it.
@Suite(.serialized) struct ReleaseServedEntropyTests {
    /// The test's trained base package under another name; `blankHead` zeroes the classifier (every image then gets
    /// uniform probabilities: entropy ln 10, the most a 10-class model can serve).
    static func variant(named name: String, blankHead: Bool) throws -> Data {
        var package = try ElasticPackage.read(path: FleetAdaptationTests.baseModel)
        package.manifest.name = name
        if blankHead {
            for key in ["head.weight", "head.bias"] {
                let shape = try #require(package.tensors[key]).shape
                package.tensors[key] = SafeTensor(floats: [Float](repeating: 0, count: shape.reduce(1, *)), shape: shape)
            }
        }
        return Data(try package.encode())
    }

    static func publish(_ c: TestCoordinator, _ body: Data, name: String) async throws -> String {
        let r = try await c.request("POST", "/v1/models?name=\(name)", body: body)
        #expect(r.status == 201, "\(r.text)")
        return try #require(r.object?["id"] as? String).lowercased()
    }

    @Test func thePlanRouteAnswersOnlyTheAttemptHoldingAReleaseJob() async throws {
        let c = try TestCoordinator()
        let a = try await Self.publish(c, Data(contentsOf: URL(fileURLWithPath: FleetAdaptationTests.baseModel)), name: "base")
        let d = try await c.registerDevice(name: "cam-0", labels: ["group": "g"])
        let other = try await c.registerDevice(name: "robot-0", labels: ["group": "h"])
        let s = try await Self.publish(c, try Self.variant(named: "sound", blankHead: false), name: "base")
        let release = try await c.request("POST", "/v1/releases", json: #"{"model_id": "\#(s)", "selector": {"labels": {"group": "g"}}}"#)
        #expect(release.status == 201, "\(release.text)")
        let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: d.token)
        let job = try #require(leased.object?["id"] as? String, "\(leased.text)")
        let attempt = try #require(leased.object?["attempt"] as? Int)
        let blocks = try ElasticPackage.read(path: FleetAdaptationTests.baseModel).manifest.blocks
        let latencies = blocks.map { b in b.variants.map { _ in 0.1 } }
        func plan(_ lat: [[Double]], attempt: Int, token: String) async throws -> TestResponse {
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["attempt": attempt, "variant_latencies_ms": lat]), as: UTF8.self)
            return try await c.request("POST", "/v1/agent/jobs/\(job)/plan", token: token, json: body)
        }

        let ok = try await plan(latencies, attempt: attempt, token: d.token)
        #expect(ok.status == 200, "\(ok.text)")
        #expect((ok.object?["model_id"] as? String)?.lowercased() == s)
        #expect((ok.object?["variants"] as? [[String: Any]])?.count == blocks.count, "\(ok.text)")
        #expect(ok.object?["latency_source"] as? String == "measured")
        // Nothing written: the device is still on its first config, of the first model.
        let config = try await c.request("GET", "/v1/devices/\(d.id)/config")
        #expect(config.object?["version"] as? Int == 1 && (config.object?["model_id"] as? String)?.lowercased() == a, "\(config.text)")

        let stale = try await plan(latencies, attempt: attempt + 1, token: d.token)
        #expect(stale.status == 409 && stale.problemCode == "job_not_held", "\(stale.text)")
        let short = try await plan(Array(latencies.dropLast()), attempt: attempt, token: d.token)
        #expect(short.status == 422 && short.problemFields == ["variant_latencies_ms"], "\(short.text)")
        let negative = try await plan([[-1] + latencies[0].dropFirst()] + latencies.dropFirst(), attempt: attempt, token: d.token)
        #expect(negative.status == 422 && negative.problemFields == ["variant_latencies_ms.0.0"], "\(negative.text)")
        let foreign = try await plan(latencies, attempt: attempt, token: other.token)
        #expect(foreign.status == 404, "another device's job does not exist: \(foreign.text)")
        let garbage = try await c.request("POST", "/v1/agent/jobs/\(job)/plan", token: d.token, json: "{\"attempt\": ")
        #expect(garbage.status == 400, "\(garbage.text)")
        #expect(try await c.request("POST", "/v1/agent/jobs/\(job)/plan", json: "{}").status == 403, "an admin key is not a device")

        // A plain campaign's job moves no model.
        let domain = try await c.request("POST", "/v1/domains", json: """
            {"name": "plain", "model_id": "\(a)", "selector": {"labels": {"group": "h"}}, "job": {"loss": "tent", "steps": 1, "timeout_s": 300, "max_attempts": 1}}
            """)
        #expect(domain.status == 201, "\(domain.text)")
        let adapt = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: other.token)
        let adaptJob = try #require(adapt.object?["id"] as? String, "\(adapt.text)")
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["attempt": 1, "variant_latencies_ms": latencies]), as: UTF8.self)
        let plain = try await c.request("POST", "/v1/agent/jobs/\(adaptJob)/plan", token: other.token, json: body)
        #expect(plain.status == 409 && plain.problemCode == "not_a_release", "\(plain.text)")
        #expect(try c.count("device_configs") == 2, "no preview wrote a config")
    }

    /// Through real agents: a model whose classifier was blanked serves uniform probabilities (entropy ln 10) — the
    /// canary's job is rejected naming served entropy and the device stays on its model; the same weights under
    /// another name serve what the device served before and the release moves both devices, whether the device's
    /// "before" is its inference service's network or its config's.
    @Test func aModelThatServesWorseIsRejectedAndASoundOneMovesTheDevices() async throws {
        let c = try TestCoordinator()
        let a = try await Self.publish(c, Data(contentsOf: URL(fileURLWithPath: FleetAdaptationTests.baseModel)), name: "base")
        var devices: [(id: String, token: String)] = []
        for i in 0..<2 { devices.append(try await c.registerDevice(name: "cam-\(i)", labels: ["group": "g"])) }
        let blank = try await Self.publish(c, try Self.variant(named: "blank", blankHead: true), name: "base")
        let agents = try devices.enumerated().map { i, d in
            // The second agent also serves predictions: its "before" is the inference service's network, the first's the
            // network of its config.
            try FleetAdaptationTests.startAgent(c, token: d.token, data: try FleetAdaptationTests.deviceData(24 + i), maxJobs: 10,
                                                arguments: i == 1 ? ["--serve", "127.0.0.1:0"] : [])
        }
        defer { for p in agents where p.isRunning { p.terminate() } }
        func jobs(_ campaign: String) async throws -> [[String: Any]] {
            (try await c.request("GET", "/v1/campaigns/\(campaign)/jobs").object?["items"] as? [[String: Any]]) ?? []
        }
        /// Releases `model` to the group, canary first, and answers the release's and its campaign's ids.
        func release(_ model: String) async throws -> (release: String, campaign: String) {
            let r = try await c.request("POST", "/v1/releases", json: """
                {"model_id": "\(model)", "selector": {"labels": {"group": "g"}},
                 "rollout": {"canary_pct": 50, "wave_size_pct": 50, "success_threshold_pct": 100}, "timeout_s": 300}
                """)
            #expect(r.status == 201, "\(r.text)")
            return (try #require(r.object?["id"] as? String), try #require((r.object?["campaign"] as? [String: Any])?["id"] as? String))
        }

        let (harmfulRelease, harmfulCampaign) = try await release(blank)
        try await ReleaseTests().waitFor("the canary's release job to be judged") {
            try await jobs(harmfulCampaign).contains { $0["state"] as? String == "rejected" || $0["state"] as? String == "succeeded" }
        }
        let judged = try #require(try await jobs(harmfulCampaign).first { $0["state"] as? String == "rejected" }, "the blank model passed")
        let gate = try #require(judged["gate"] as? [String: Any])
        #expect(gate["criterion"] as? String == "served_entropy", "\(gate)")
        #expect(((gate["reasons"] as? [String]) ?? []).contains { $0.contains("served entropy rose") }, "\(gate)")
        let metrics = try #require(judged["metrics"] as? [String: Any])
        let after = try #require(metrics["entropy_after"] as? Double), before = try #require(metrics["entropy_before"] as? Double)
        #expect(abs(after - log(10.0)) < 1e-4, "a blank classifier serves uniform probabilities: \(after)")
        #expect(before < after - 0.1, "the trained model served lower entropy: \(before)")
        #expect(abs((gate["entropy_drop"] as? Double ?? 0) - (before - after)) < 1e-9)
        print("release gate on the blank model: \(gate)")
        let rejectedDevice = try #require(judged["device_id"] as? String)
        let kept = try await c.request("GET", "/v1/devices/\(rejectedDevice)/config")
        #expect((kept.object?["model_id"] as? String)?.lowercased() == a && kept.object?["version"] as? Int == 1, "\(kept.text)")
        #expect(try await c.request("POST", "/v1/releases/\(harmfulRelease)/cancel").status == 200)

        let sound = try await Self.publish(c, try Self.variant(named: "sound", blankHead: false), name: "base")
        let (goodRelease, goodCampaign) = try await release(sound)
        try await ReleaseTests().waitFor("the sound release to end") {
            let status = try await c.request("GET", "/v1/releases/\(goodRelease)").object?["status"] as? String
            return status != nil && status != "running"
        }
        #expect(try await c.request("GET", "/v1/releases/\(goodRelease)").object?["status"] as? String == "completed")
        for job in try await jobs(goodCampaign) {
            #expect(job["state"] as? String == "succeeded", "\(job)")
            let gate = try #require(job["gate"] as? [String: Any])
            #expect(gate["criterion"] as? String == "served_entropy" && gate["passed"] as? Bool == true, "\(gate)")
            #expect(abs(gate["entropy_drop"] as? Double ?? 1) <= 0.1, "the same weights serve the same: \(gate)")
            #expect((job["metrics"] as? [String: Any])?["latency_ms"] is Double, "the release's combination was measured: \(job)")
        }
        for d in devices {
            let cfg = try await c.request("GET", "/v1/devices/\(d.id)/config")
            #expect((cfg.object?["model_id"] as? String)?.lowercased() == sound && cfg.object?["trigger"] as? String == "release", "\(cfg.text)")
        }
    }
}
