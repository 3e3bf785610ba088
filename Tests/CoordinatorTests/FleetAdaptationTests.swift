import ElasticModel
import Foundation
import Learning
import ONNXExport
import Testing
import TestSupport

/// The main job end to end: a real coordinator, real agent processes (the `fleetadapt-agent` executable),
/// real training on each device's own corrupted Fashion-MNIST images.
@Suite(.serialized) struct FleetAdaptationTests {
    /// A small elastic package built once per test process (3 positions × 5 variants): real training, real
    /// distillation, few steps.
    static let baseModel: String = {
        let package = try! SmallPackage(
            architecture: .resnet(widths: [8, 16, 24], blocksPerStage: [1, 1, 1]), name: "fmnist-test", description: "test",
            trainImages: 4000, recipe: BaseModelRecipe(steps: 250, warmupSteps: 10, seed: 2), distillImages: 256, distillationSteps: 20,
            calibrationCombinations: 2, validationCombinations: 2, validationImages: 200).build().package
        let path = NSTemporaryDirectory() + "fleetadapt-package-\(getpid()).fap"
        try! Data(try! package.encode()).write(to: URL(fileURLWithPath: path))
        return path
    }()

    static var agentPath: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fleetadapt-agent").path
    }

    static func deviceData(_ index: Int) throws -> String {
        let dir = NSTemporaryDirectory() + "fleetadapt-device-\(getpid())-\(index)-\(UUID().uuidString.prefix(6))"
        let clean = try FashionMNIST.load(split: .test).subset((index * 300)..<(index * 300 + 300))
        try LocalDataset.write(try Corruption.contrast.apply(to: clean, severity: 4, seed: 5, firstIndex: index * 300),
                               metadata: ["corruption": "contrast", "severity": "4"], to: dir)
        return dir
    }

    static func startAgent(_ c: TestCoordinator, token: String, data: String, maxJobs: Int = 1,
                           arguments extra: [String] = []) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: agentPath)
        p.arguments = ["--coordinator", c.baseURL, "--data-dir", data, "--cache-dir", data + "-cache", "--poll-wait", "2",
                       "--max-jobs", String(maxJobs)] + extra
        var env = ProcessInfo.processInfo.environment
        env["FLEETADAPT_TOKEN"] = token
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Publishes the base model through the API; agents download it by id.
    static func publish(_ c: TestCoordinator) async throws -> String {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: baseModel))
        let r = try await c.request("POST", "/v1/models?name=fmnist-resnet", body: bytes)
        guard r.status == 201 || r.status == 200, let id = r.object?["id"] as? String else { throw TestFailure("publish: \(r.status) \(r.text)") }
        return id
    }

    func waitFor(_ what: String, timeout: Double = 180, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("timed out waiting for \(what)")
    }

    func domain(_ model: String, label: String, steps: Int = 40) -> String {
        """
        {"name": "contrast", "model_id": "\(model)", "selector": {"labels": {"fleet": "\(label)"}},
         "rollout": {"canary_pct": 34, "wave_size_pct": 33, "success_threshold_pct": 60},
         "job": {"loss": "tent", "steps": \(steps), "timeout_s": 600, "max_attempts": 3, "batch_size": 32, "learning_rate": 0.002, "lease_s": 20}}
        """
    }

    /// A `profile` campaign: the real agent measures every variant on the device, the coordinator stores the
    /// latencies, and the device's config is re-planned from its own measurements (AdaptiveNet).
    @Test func aProfileCampaignMakesThePlannerUseMeasuredLatencies() async throws {
        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        // The device claims far more GFLOP/s than this machine has: from scaled reference latencies the full
        // network fits its 0.1 ms budget; its own measurements show it does not, so the decision must change.
        let (id, token) = try await ConfigTests.register(c, name: "measured", gflops: 5_000, latency: 0.1)
        let before = try #require(try await c.request("GET", "/v1/devices/\(id)/config").object)
        #expect(before["latency_source"] as? String == "reference")
        #expect(before["feasible"] as? Bool == true)
        let created = try await c.request("POST", "/v1/domains", json: """
            {"name": "measure", "model_id": "\(model)", "selector": {"device_ids": ["\(id)"]},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 50},
             "job": {"kind": "profile", "timeout_s": 300, "max_attempts": 2}}
            """)
        #expect(created.status == 201, "\(created.text)")
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let agent = try Self.startAgent(c, token: token, data: try Self.deviceData(7))
        defer { if agent.isRunning { agent.terminate() } }
        try await waitFor("profile campaign completion") {
            try await c.request("GET", "/v1/campaigns/\(campaign)").object?["status"] as? String == "completed"
        }
        #expect(try c.count("device_variant_latencies WHERE jsonb_array_length(latencies) = 3") == 1)
        #expect(try c.count("job_artifacts") == 0)
        let after = try #require(try await c.request("GET", "/v1/devices/\(id)/config").object)
        #expect(after["latency_source"] as? String == "measured", "\(after)")
        #expect(after["trigger"] as? String == "profile")
        #expect((after["version"] as? Int ?? 0) > (before["version"] as? Int ?? 0))
        // A profile request needs no loss or steps, but still refuses an unknown kind, naming the field.
        let bad = try await c.request("POST", "/v1/domains", json: """
            {"name": "x", "model_id": "\(model)", "selector": {"device_ids": ["\(id)"]}, "job": {"kind": "measure", "timeout_s": 5, "max_attempts": 1}}
            """)
        #expect(bad.status == 422 && bad.text.contains("job.kind"), "\(bad.text)")
    }

    @Test func aCampaignOverThreeAgentsCompletesAndEveryDeviceShowsTheAdaptation() async throws {
        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        var devices: [(id: String, token: String, data: String)] = []
        for i in 0..<3 {
            let (id, token) = try await c.registerDevice(name: "cam-\(i)", labels: ["fleet": "e2e"])
            devices.append((id, token, try Self.deviceData(i)))
        }
        let created = try await c.request("POST", "/v1/domains", json: domain(model, label: "e2e"))
        #expect(created.status == 201)
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let agents = try devices.map { try Self.startAgent(c, token: $0.token, data: $0.data) }
        defer { agents.forEach { if $0.isRunning { $0.terminate() } } }
        try await waitFor("campaign completion") {
            try await c.request("GET", "/v1/campaigns/\(campaign)").object?["status"] as? String == "completed"
        }
        let view = try await c.request("GET", "/v1/campaigns/\(campaign)")
        #expect((view.object?["counts"] as? [String: Int]) == ["succeeded": 3])
        #expect(try c.count("job_artifacts") == 3)
        for d in devices {
            let m = try await c.request("GET", "/v1/devices/\(d.id)/metrics?kind=job.adapt")
            let point = try #require((m.object?["items"] as? [[String: Any]])?.first?["values"] as? [String: Double])
            print("device \(d.id): accuracy \(point["accuracy_before"]!) → \(point["accuracy_after"]!), entropy \(point["entropy_before"]!) → \(point["entropy_after"]!)")
            // Trained on the device's own unlabeled images: prediction entropy fell and accuracy (measured
            // with the labels the agent never trains on) rose.
            #expect(point["entropy_after"]! < point["entropy_before"]!)
            #expect(point["accuracy_after"]! > point["accuracy_before"]!)
            #expect(point["samples"] == 300)
        }
        let gain = view.object?["accuracy_gain"] as? [String: Any]
        print("campaign accuracy gain: \(gain ?? [:])")
        #expect((gain?["mean"] as? Double ?? 0) > 0)
        // Each device's adapted subnet, rendered by the coordinator from its config and artifact, is byte for byte
        // the model.onnx its agent wrote after adapting (which ONNXExportTests check against onnxruntime).
        for d in devices {
            let path = d.data + "/model.onnx"
            try await waitFor("the agent's model.onnx") { FileManager.default.fileExists(atPath: path) }
            let local = try Data(contentsOf: URL(fileURLWithPath: path))
            let admin = try await c.request("GET", "/v1/devices/\(d.id)/model.onnx")
            #expect(admin.status == 200, "\(admin.text)")
            #expect(admin.body == local, "coordinator's \(admin.body.count) bytes vs the agent's \(local.count)")
            let etag = try #require(admin.headers["etag"])
            #expect(!etag.hasSuffix("-base\""), "\(etag)")
            let own = try await c.request("GET", "/v1/agent/model.onnx", token: d.token)
            #expect(own.status == 200 && own.body == local && own.headers["etag"] == etag)
            let unchanged = try await c.request("GET", "/v1/agent/model.onnx", token: d.token, headers: ["If-None-Match": etag])
            #expect(unchanged.status == 304 && unchanged.body.isEmpty)
        }
    }

    /// The ONNX download of a device that has not adapted: the base combination, its tag naming no adapters; the
    /// bad requests answer 4xx problems naming what is wrong.
    @Test func aDevicesModelDownloadsAsONNXAndBadRequestsAreNamed() async throws {
        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        let (id, token) = try await c.registerDevice(name: "onnx-dl")
        let r = try await c.request("GET", "/v1/devices/\(id)/model.onnx")
        #expect(r.status == 200, "\(r.text)")
        #expect(r.headers["content-type"] == "application/octet-stream")
        #expect(r.headers["etag"]?.hasSuffix("-whole-base\"") == true, "\(r.headers)")
        // The bytes are the package's export with the config's variants and no adapters.
        let config = try #require(try await c.request("GET", "/v1/devices/\(id)/config").object)
        #expect(config["model_id"] as? String == model)
        let variants = ((config["variants"] as? [[String: String]]) ?? []).map { "\($0["block"]!)=\($0["variant"]!)" }.joined(separator: ",")
        let export = try ModelExport(package: try ElasticPackage.read(path: Self.baseModel))
        try export.compose(try ModelExport.parseVariants(variants))
        #expect([UInt8](r.body) == (try export.onnx()))
        #expect(try await c.request("GET", "/v1/agent/model.onnx", token: token).body == r.body)
        // Bad requests.
        let part = try await c.request("GET", "/v1/devices/\(id)/model.onnx?part=prefix")
        #expect(part.status == 400 && part.text.contains("\"part\""), "\(part.text)")
        let unsplit = try await c.request("GET", "/v1/devices/\(id)/model.onnx?part=device")
        #expect(unsplit.status == 409 && unsplit.text.contains("not_split"), "\(unsplit.text)")
        let unknown = try await c.request("GET", "/v1/devices/\(UUID().uuidString.lowercased())/model.onnx")
        #expect(unknown.status == 404)
        let viewer = try await c.request("POST", "/v1/api-keys", json: #"{"name": "dash", "role": "viewer"}"#)
        let viewerKey = try #require(viewer.object?["token"] as? String, "\(viewer.text)")
        let refused = try await c.request("GET", "/v1/devices/\(id)/model.onnx", token: viewerKey)
        #expect(refused.status == 403 && refused.text.contains("insufficient_role"), "\(refused.text)")
        #expect(try await c.request("GET", "/v1/agent/model.onnx", token: "not-a-token").status == 401)
    }

    /// Devices that trained feed a sample-weighted domain adapter; a device too low on battery to train gets an
    /// `apply` job in the last wave, installs it, and improves without training.
    @Test func aLowBatteryDeviceAppliesTheAggregatedAdapters() async throws {
        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        var agents: [Process] = []
        defer { agents.forEach { if $0.isRunning { $0.terminate() } } }
        for i in 0..<2 {
            let (_, token) = try await c.registerDevice(name: "trainer-\(i)", labels: ["fleet": "agg"])
            agents.append(try Self.startAgent(c, token: token, data: try Self.deviceData(10 + i)))
        }
        let (lowID, lowToken) = try await c.registerDevice(name: "low-battery", labels: ["fleet": "agg"])
        #expect(try await c.request("PUT", "/v1/agent/context", token: lowToken, json: #"{"battery_pct": 5}"#).status == 200)
        let created = try await c.request("POST", "/v1/domains", json: domain(model, label: "agg"))
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        #expect(try c.count("jobs WHERE kind = 'apply' AND device_id = '\(lowID)'") == 1)
        agents.append(try Self.startAgent(c, token: lowToken, data: try Self.deviceData(12)))
        try await waitFor("campaign completion") {
            try await c.request("GET", "/v1/campaigns/\(campaign)").object?["status"] as? String == "completed"
        }
        #expect(try c.sql("SELECT max(device_count)::bigint AS n FROM domain_adapters").rows[0].decode("n", as: Int.self) == 2)
        let m = try await c.request("GET", "/v1/devices/\(lowID)/metrics?kind=job.apply")
        let v = try #require((m.object?["items"] as? [[String: Any]])?.first?["values"] as? [String: Double])
        print("applied aggregated adapters: accuracy \(v["accuracy_before"]!) → \(v["accuracy_after"]!)")
        #expect(v["steps"] == 0)
        #expect(v["accuracy_after"]! > v["accuracy_before"]!)
    }

    @Test func aKilledAgentsJobIsRequeuedAndARetryCompletesIt() async throws {
        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        let (id, token) = try await c.registerDevice(name: "fragile", labels: ["fleet": "kill"])
        let data = try Self.deviceData(5)
        // The retry below runs only 10 steps, too few to judge: this test is about the queue, so no quality gate.
        let created = try await c.request("POST", "/v1/domains", json: String(domain(model, label: "kill", steps: 400).dropLast()) + #", "gate": {"enabled": false}}"#)
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let first = try Self.startAgent(c, token: token, data: data)
        try await waitFor("the first attempt to run") {
            try c.count("jobs WHERE state IN ('leased', 'running') AND attempt = 1") == 1
        }
        kill(first.processIdentifier, SIGKILL)
        // The agent is gone without a word; as its lease would after lease_s, expire it now.
        _ = try c.sql("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE state IN ('leased', 'running')")
        try await waitFor("the job to be requeued") { try c.count("jobs WHERE state = 'queued' AND attempt = 1") == 1 }
        _ = try c.sql("UPDATE jobs SET document = jsonb_set(document, '{steps}', '10')")   // the retry finishes quickly
        let second = try Self.startAgent(c, token: token, data: data)
        defer { if second.isRunning { second.terminate() } }
        try await waitFor("the retry to complete") {
            try await c.request("GET", "/v1/campaigns/\(campaign)").object?["status"] as? String == "completed"
        }
        #expect(try c.count("jobs WHERE state = 'succeeded' AND attempt = 2 AND device_id = '\(id)'") == 1)
        #expect(try c.count("job_artifacts WHERE attempt = 2") == 1)
    }
}

/// The model registry: verified whole before storing, content-addressed, idempotent, cacheable.
@Suite struct ModelRegistryTests {
    @Test func publishDownloadAndRefuseBadPackages() async throws {
        let c = try TestCoordinator()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: FleetAdaptationTests.baseModel))
        let first = try await c.request("POST", "/v1/models?name=base", body: bytes)
        #expect(first.status == 201)
        let id = try #require(first.object?["id"] as? String)
        #expect(first.object?["sha256"] as? String == (try c.sha256Hex(Array(bytes))))
        let again = try await c.request("POST", "/v1/models?name=base", body: bytes)
        #expect(again.status == 200)
        #expect(again.object?["id"] as? String == id)
        #expect(try c.count("models") == 1)

        var tampered = Array(bytes)
        tampered[20] ^= 0xFF   // inside the first tar header: its checksum no longer matches
        // One bit inside the weights file's content (its tar header is the last one; the manifest names the file
        // too, so search headers only, at 512-byte boundaries): SHA-256 mismatch.
        var tamperedWeights = Array(bytes)
        let name = Array("weights.safetensors".utf8)
        let weightsHeader = try #require(stride(from: 0, to: tamperedWeights.count - 512, by: 512).first {
            tamperedWeights[$0..<($0 + name.count)].elementsEqual(name)
        })
        tamperedWeights[weightsHeader + 512 + 4000] ^= 0x01
        let cases: [(String, [UInt8])] = [("tampered header", tampered), ("tampered weights", tamperedWeights),
                                          ("truncated", Array(bytes.prefix(bytes.count - 1024))),
                                          ("not a package", Array("hello".utf8)), ("empty", [])]
        for (name, body) in cases {
            let r = try await c.request("POST", "/v1/models", body: Data(body))
            #expect(r.status == 422, "\(name): \(r.status)")
            // A digest mismatch names the package file; what is no package at all names the body.
            #expect(r.problemFields == [name == "tampered weights" ? "weights.safetensors" : "body"], "\(name): \(r.text)")
        }
        #expect(try c.count("models") == 1)
        #expect(try c.count("model_blobs") == 1)

        // The summary: blocks, variants with profiles, combination count; the planning space is stored beside it.
        let summary = try await c.request("GET", "/v1/models/\(id)")
        #expect(summary.object?["combination_count"] as? Int == 125)
        let blocks = try #require(summary.object?["blocks"] as? [[String: Any]])
        #expect(blocks.map { $0["name"] as? String } == ["blocks.0", "blocks.1", "blocks.2"])
        #expect((blocks[1]["variants"] as? [[String: Any]])?.map { $0["id"] as? String } == ["s0", "s25", "s50", "s75", "skip"])
        #expect(try c.count("models WHERE jsonb_array_length(planning_space->'blocks') = 3") == 1)

        let (_, token) = try await c.registerDevice()
        let download = try await c.request("GET", "/v1/models/\(id)/package", token: token)
        #expect(download.status == 200)
        #expect(download.body == bytes)
        let etag = try #require(download.headers["etag"])
        let cached = try await c.request("GET", "/v1/models/\(id)/package", token: token, headers: ["If-None-Match": etag])
        #expect(cached.status == 304)
        #expect(try await c.request("GET", "/v1/models/\(UUID().uuidString)/package", token: token).status == 404)
        #expect(try await c.request("GET", "/v1/models/\(id)", token: token).status == 403)
        let list = try await c.request("GET", "/v1/models")
        #expect((list.object?["items"] as? [Any])?.count == 1)
    }

    static func offset(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { i in haystack[i..<(i + needle.count)].elementsEqual(needle) }
    }

    /// Sends `head` on a fresh loopback connection and returns what the server answers until it closes (or 30 s pass).
    static func headersOnly(_ head: String, port: Int) throws -> String {
        let fd = try RawHTTPClient.connect(port: port, timeoutSeconds: 30)
        defer { close(fd) }
        guard RawHTTPClient.send(fd, Array(head.utf8)) else { throw TestFailure("write: \(errno)") }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            answer += buffer[0..<n]
            if String(decoding: answer, as: UTF8.self).contains("\r\n\r\n"), answer.count > 64 { break }
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// A package larger than the coordinator's upload limit is refused with 413 before it is read; nothing is stored.
    @Test func oversizedPackageIsRefused() async throws {
        let c = try TestCoordinator(modelUploadLimit: 64 << 10)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: FleetAdaptationTests.baseModel))
        #expect(bytes.count > 64 << 10)
        // The request declares the package's size and sends none of it: the answer must come from the headers alone
        // (sending the body too races the server's early 413 and close — a broken pipe, as one CI run saw).
        let answer = try Self.headersOnly("POST /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestCoordinator.adminKey)\r\n"
                                          + "Content-Type: application/octet-stream\r\nContent-Length: \(bytes.count)\r\n\r\n", port: c.app.port)
        #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer)")
        #expect(answer.lowercased().contains("content-type: application/problem+json"), "\(answer)")
        #expect(try c.count("models") == 0)
        #expect(try c.count("model_blobs") == 0)
    }
}
