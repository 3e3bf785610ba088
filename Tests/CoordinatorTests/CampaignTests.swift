import Foundation
import Learning
import Testing
import PostgresClient

/// Domain → campaign → jobs, driven through the real coordinator over HTTP on a real PostgreSQL.
@Suite struct CampaignTests {
    let c: TestCoordinator
    init() throws { c = try TestCoordinator() }

    func domainBody(model: String, labels: String = #"{"fleet": "t"}"#, loss: String = "tent", canary: Double = 33,
                    wave: Double = 33, timeout: Int = 60, lease: Int? = nil, attempts: Int = 3, minExecuted: Int = 50) -> String {
        let leaseText = lease.map { #", "lease_s": \#($0)"# } ?? ""
        return """
            {"name": "fog", "model_id": "\(model)", "selector": {"labels": \(labels)},
             "rollout": {"canary_pct": \(canary), "wave_size_pct": \(wave), "success_threshold_pct": 50},
             "abort": {"failure_threshold_pct": 50, "min_executed": \(minExecuted)},
             "job": {"loss": "\(loss)", "steps": 20, "timeout_s": \(timeout), "max_attempts": \(attempts)\(leaseText)}}
            """
    }

    func lease(_ token: String, wait: Int = 0) async throws -> [String: Any]? {
        let r = try await c.request("GET", "/v1/agent/jobs/next?wait=\(wait)", token: token)
        if r.status == 204 { return nil }
        guard r.status == 200 else { throw TestFailure("lease: \(r.status) \(r.text)") }
        return r.object
    }

    /// Uploads the attempt's adapters (an honest artifact of the fixture model), then reports success.
    func succeed(_ token: String, _ job: [String: Any], accuracy: (Double, Double) = (0.5, 0.7)) async throws -> TestResponse {
        let id = job["id"] as! String
        let attempt = job["attempt"] as! Int
        _ = try await c.uploadArtifact(job: id, attempt: attempt, token: token, tensors: TestCoordinator.fixtureArtifact())
        return try await c.request("POST", "/v1/agent/jobs/\(id)/result", token: token, json: """
            {"attempt": \(attempt), "outcome": "succeeded", "metrics": {"entropy_before": 1.2, "entropy_after": 0.8,
             "accuracy_before": \(accuracy.0), "accuracy_after": \(accuracy.1), "train_seconds": 1.5, "samples": 100, "steps": 20}}
            """)
    }

    @Test func campaignRunsWaveByWaveToCompletion() async throws {
        let model = try c.insertModel()
        var tokens: [String] = []
        for i in 0..<3 { tokens.append(try await c.registerDevice(name: "d\(i)", labels: ["fleet": "t"]).token) }
        _ = try await c.registerDevice(name: "other", labels: ["fleet": "u"])
        let created = try await c.request("POST", "/v1/domains", json: domainBody(model: model))
        #expect(created.status == 201, "\(created.text)")
        let campaign = try #require(created.object?["campaign"] as? [String: Any])
        let campaignID = try #require(campaign["id"] as? String)
        #expect(campaign["target_count"] as? Int == 3)
        #expect(campaign["wave_count"] as? Int == 3)
        #expect(try c.count("jobs") == 3)

        // Only the canary wave is leasable at first.
        var leased: [(String, [String: Any])] = []
        for t in tokens { if let job = try await lease(t) { leased.append((t, job)) } }
        #expect(leased.count == 1)
        // A device never holds two jobs, and a second poll gets nothing.
        #expect(try await lease(leased[0].0) == nil)

        for wave in 0..<3 {
            if wave > 0 {
                leased = []
                for t in tokens { if let job = try await lease(t) { leased.append((t, job)) } }
                #expect(leased.count == 1, "wave \(wave)")
            }
            for (t, job) in leased {
                let beat = try await c.request("POST", "/v1/agent/jobs/\(job["id"] as! String)/heartbeat", token: t,
                                               json: #"{"attempt": 1, "progress": {"step": 10, "loss": 0.3}}"#)
                #expect(beat.status == 200)
                let r = try await succeed(t, job)
                #expect(r.status == 200, "\(r.text)")
                // Idempotent per (job, attempt).
                #expect(try await succeed(t, job).status == 200)
            }
        }
        let final = try await c.request("GET", "/v1/campaigns/\(campaignID)")
        #expect(final.object?["status"] as? String == "completed")
        #expect((final.object?["counts"] as? [String: Int])?["succeeded"] == 3)
        let gain = final.object?["accuracy_gain"] as? [String: Any]
        #expect(gain?["n"] as? Int == 3)
        #expect(abs((gain?["mean"] as? Double ?? 0) - 0.2) < 1e-9)
        let summary = try await c.request("GET", "/v1/fleet/summary")
        #expect(summary.object?["adapted_devices"] as? Int == 3)
    }

    @Test func expiredLeaseIsRequeuedAndTheLateResultRefused() async throws {
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "slow", labels: ["fleet": "t"])
        let created = try await c.request("POST", "/v1/domains", json: domainBody(model: model, canary: 100, timeout: 600, lease: 60))
        #expect(created.status == 201, "\(created.text)")
        let first = try #require(try await lease(token))
        #expect(first["attempt"] as? Int == 1)
        // The agent goes silent: move its lease expiry into the past (as if a minute passed without heartbeats);
        // the maintenance loop requeues the job (backoff is scaled to milliseconds here).
        _ = try c.sql("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")
        var second: [String: Any]?
        for _ in 0..<40 where second == nil {
            try await Task.sleep(for: .milliseconds(250))
            second = try await lease(token)
        }
        let retry = try #require(second)
        #expect(retry["id"] as? String == first["id"] as? String)
        #expect(retry["attempt"] as? Int == 2)
        let late = try await succeed(token, first)
        #expect(late.status == 409)
        #expect(late.problemCode == "stale_attempt")
        let lateBeat = try await c.request("POST", "/v1/agent/jobs/\(first["id"] as! String)/heartbeat", token: token, json: #"{"attempt": 1}"#)
        #expect(lateBeat.status == 409)
        #expect(try await succeed(token, retry).status == 200)
        let errors = try c.sql("SELECT jsonb_array_length(errors)::bigint AS n FROM jobs").rows[0].decode("n", as: Int.self)
        #expect(errors == 1)
    }

    @Test func failuresRetryThenPauseTheCampaign() async throws {
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "bad", labels: ["fleet": "t"])
        let created = try await c.request("POST", "/v1/domains", json: domainBody(model: model, canary: 100, attempts: 2, minExecuted: 1))
        let campaignID = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        for attempt in 1...2 {
            var job: [String: Any]?
            for _ in 0..<40 where job == nil {
                job = try await lease(token)
                if job == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let j = try #require(job)
            #expect(j["attempt"] as? Int == attempt)
            let r = try await c.request("POST", "/v1/agent/jobs/\(j["id"] as! String)/result", token: token,
                                        json: #"{"attempt": \#(attempt), "outcome": "failed", "error": "out of memory"}"#)
            #expect(r.status == 200)
        }
        let view = try await c.request("GET", "/v1/campaigns/\(campaignID)")
        #expect((view.object?["counts"] as? [String: Int])?["failed"] == 1)
        #expect(view.object?["status"] as? String == "paused")
        #expect((view.object?["status_reason"] as? String)?.contains("abort threshold") == true)
        #expect(try await c.request("POST", "/v1/campaigns/\(campaignID)/pause").status == 409)
        let retried = try await c.request("POST", "/v1/campaigns/\(campaignID)/retry-failed")
        #expect(retried.status == 200)
        #expect(retried.object?["status"] as? String == "running")
        #expect(try await lease(token) != nil)
        let canceled = try await c.request("POST", "/v1/campaigns/\(campaignID)/cancel")
        #expect(canceled.object?["status"] as? String == "canceled")
    }

    @Test func aDeviceCannotTouchAnotherDevicesJob() async throws {
        let model = try c.insertModel()
        let (_, a) = try await c.registerDevice(name: "a", labels: ["fleet": "t"])
        let (_, b) = try await c.registerDevice(name: "b", labels: ["fleet": "x"])
        _ = try await c.request("POST", "/v1/domains", json: domainBody(model: model, canary: 100))
        let job = try #require(try await lease(a))
        let id = job["id"] as! String
        #expect(try await lease(b) == nil)
        #expect(try await c.request("POST", "/v1/agent/jobs/\(id)/heartbeat", token: b, json: #"{"attempt": 1}"#).status == 404)
        #expect(try await succeed(b, job).status == 404)
        let body = [UInt8](repeating: 1, count: 10)
        #expect(try await c.request("PUT", "/v1/agent/jobs/\(id)/artifact?attempt=1", token: b, body: Data(body),
                                    headers: ["Content-SHA256": try c.sha256Hex(body)]).status != 201)
        #expect(try await succeed(a, job).status == 200)
    }

    @Test func badArtifactsAreRefusedAndNothingStored() async throws {
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "a", labels: ["fleet": "t"])
        _ = try await c.request("POST", "/v1/domains", json: domainBody(model: model, canary: 100))
        let job = try #require(try await lease(token))
        let path = "/v1/agent/jobs/\(job["id"] as! String)/artifact?attempt=1"
        let good = SafeTensors.encode(TestCoordinator.fixtureArtifact())
        let goodSHA = try c.sha256Hex(good)
        func put(_ body: [UInt8], _ sha: String?, path: String = path) async throws -> TestResponse {
            try await c.request("PUT", path, token: token, body: Data(body), headers: sha.map { ["Content-SHA256": $0] } ?? [:])
        }
        #expect(try await put(good, String(repeating: "0", count: 64)).status == 422)   // wrong sha256
        #expect(try await put(Array(good.prefix(good.count - 5)), goodSHA).status == 422) // truncated
        let notST = Array("not a safetensors file".utf8)
        let r = try await put(notST, try c.sha256Hex(notST))
        #expect(r.status == 422)
        #expect(r.problemCode == "invalid_artifact")
        #expect(try await put(good, nil).status == 400)                                    // no digest header
        let big = [UInt8](repeating: 0, count: 17 << 20)
        do {
            #expect(try await put(big, try c.sha256Hex(big)).status == 413)                  // oversized
        } catch {
            // The server answered 413 from Content-Length and closed before the client finished sending.
        }
        let wrongAttempt = try await put(good, goodSHA, path: path.replacingOccurrences(of: "attempt=1", with: "attempt=2"))
        #expect(wrongAttempt.status == 409, "\(wrongAttempt.status) \(wrongAttempt.text)")
        #expect(try c.count("job_artifacts") == 0)
        #expect(try await put(good, goodSHA).status == 201)
        #expect(try c.count("job_artifacts") == 1)
    }

    /// The domain adapter folded in one artifact at a time equals the sample-weighted average of all artifacts
    /// computed at once, per tensor over the devices that sent it (one device ran another variant).
    @Test func incrementalAggregationEqualsTheBatchAverage() async throws {
        let model = try c.insertModel()
        var tokens: [String] = []
        for i in 0..<3 { tokens.append(try await c.registerDevice(name: "d\(i)", labels: ["fleet": "t"]).token) }
        let created = try await c.request("POST", "/v1/domains", json: domainBody(model: model, canary: 100))
        let domain = try #require((created.object?["domain"] as? [String: Any])?["id"] as? String)
        let samples = [100, 300, 50]
        var rng = SeededRandom(seed: 4)
        var artifacts: [[String: SafeTensor]] = []
        for (i, token) in tokens.enumerated() {
            let job = try #require(try await lease(token))
            if i == 1 { _ = try c.sql("UPDATE jobs SET document = jsonb_set(document, '{variants}', '[\"s0\", \"s50\"]') WHERE id = \(UUID(uuidString: job["id"] as! String)!)") }
            let adapter = "blocks.0.adapter.conv.weight", norm = i == 1 ? "blocks.1.s50.bn1.weight" : "blocks.1.bn1.weight"
            let honest = TestCoordinator.fixtureArtifact(variants: i == 1 ? ["s0", "s50"] : [])
            let tensors = [adapter: honest[adapter]!, norm: honest[norm]!].mapValues { t in
                SafeTensor(floats: (0..<t.elementCount).map { _ in rng.normal() }, shape: t.shape)
            }
            artifacts.append(tensors)
            let bytes = SafeTensors.encode(tensors)
            let id = job["id"] as! String
            #expect(try await c.request("PUT", "/v1/agent/jobs/\(id)/artifact?attempt=1", token: token, body: Data(bytes),
                                        headers: ["Content-SHA256": try c.sha256Hex(bytes)]).status == 201)
            let r = try await c.request("POST", "/v1/agent/jobs/\(id)/result", token: token, json: """
                {"attempt": 1, "outcome": "succeeded", "metrics": {"samples": \(samples[i]), "steps": 20}}
                """)
            #expect(r.status == 200, "\(r.text)")
        }
        let answer = try await c.request("GET", "/v1/agent/domains/\(domain)/adapter", token: tokens[0])
        #expect(answer.status == 200)
        let (averaged, meta) = try SafeTensors.decode(Array(answer.body))
        #expect(meta["devices"] == "3" && meta["samples"] == "450")
        #expect(try c.count("domain_adapters") == 3)
        for name in Set(artifacts.flatMap(\.keys)) {
            let holders = artifacts.indices.filter { artifacts[$0][name] != nil }
            let total = holders.reduce(0.0) { $0 + Double(samples[$1]) }
            let expected = try (0..<artifacts[holders[0]][name]!.elementCount).map { k in
                try holders.reduce(0.0) { $0 + Double(samples[$1]) * Double(try artifacts[$1][name]!.floats()[k]) } / total
            }
            let got = try #require(averaged[name]).floats()
            for (a, b) in zip(got, expected) { #expect(abs(Double(a) - b) < 1e-5, "\(name): \(a) vs \(b)") }
        }
    }

    @Test func badCampaignBodiesStoreNothing() async throws {
        let model = try c.insertModel()
        _ = try await c.registerDevice(name: "a", labels: ["fleet": "t"])
        let cases: [(String, Int, String)] = [
            (domainBody(model: UUID().uuidString), 422, "model_id"),
            (domainBody(model: model, labels: "{}"), 422, "selector"),
            (domainBody(model: model, labels: #"{"fleet": "nobody"}"#), 422, "selector"),
            (domainBody(model: model, canary: 0), 422, "rollout.canary_pct"),
            (domainBody(model: model, canary: 150), 422, "rollout.canary_pct"),
            (domainBody(model: model, wave: -3), 422, "rollout.wave_size_pct"),
            (domainBody(model: model, loss: "magic"), 422, "job.loss"),
            (domainBody(model: model, timeout: 0), 422, "job.timeout_s"),
            (domainBody(model: model, attempts: 0), 422, "job.max_attempts"),
            (domainBody(model: "not-a-uuid"), 422, "model_id"),
            (#"{"name": "x", "selector": {"labels": {"fleet": "t"}}, "job": {"loss": "tent", "steps": 5, "timeout_s": 60, "max_attempts": 1}}"#, 422, "model_id"),
        ]
        for (body, status, field) in cases {
            let r = try await c.request("POST", "/v1/domains", json: body)
            #expect(r.status == status, "\(field): \(r.status) \(r.text)")
            #expect(r.problemFields.contains(field), "\(field): \(r.problemFields) \(r.text)")
        }
        let ids = try await c.request("POST", "/v1/domains", json: """
            {"name": "x", "model_id": "\(model)", "selector": {"device_ids": ["\(UUID().uuidString)"]},
             "job": {"loss": "tent", "steps": 5, "timeout_s": 60, "max_attempts": 1}}
            """)
        #expect(ids.status == 422)
        #expect(ids.problemFields == ["selector.device_ids"])
        #expect(try c.count("domains") == 0)
        #expect(try c.count("campaigns") == 0)
        #expect(try c.count("jobs") == 0)
    }

    @Test func longPollIsWokenWhenAJobAppears() async throws {
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "waiter", labels: ["fleet": "t"])
        async let polled = c.request("GET", "/v1/agent/jobs/next?wait=20", token: token)
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        _ = try await c.request("POST", "/v1/domains", json: domainBody(model: model, canary: 100))
        let r = try await polled
        // 200 with the job: the poll was answered when the job appeared, not by its 20 s timeout (which gives 204).
        #expect(r.status == 200)
        #expect(ContinuousClock.now - start < .seconds(15))
        let idle = try await c.request("GET", "/v1/agent/jobs/next?wait=1", token: token)
        #expect(idle.status == 204)
        #expect(idle.headers["retry-after"] == "1")
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=999", token: token).status == 400)
    }
}

extension TestCoordinator {
    /// SHA-256 as PostgreSQL computes it: an independent check of the coordinator's own hashing.
    func sha256Hex(_ bytes: [UInt8]) throws -> String {
        try sql("SELECT encode(sha256(\(bytes)), 'hex') AS h").rows[0].decode("h", as: String.self)
    }
}

/// A two-tensor F32 safetensors file written by hand (8-byte length, JSON header, data).
func safetensorsFixture() -> [UInt8] {
    var header = #"{"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    while (header.utf8.count % 8) != 0 { header += " " }
    var out = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) }
    out += Array(header.utf8)
    out += withUnsafeBytes(of: Float(1.5)) { Array($0) } + withUnsafeBytes(of: Float(-2)) { Array($0) }
    return out
}
