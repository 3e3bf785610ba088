import ElasticModel
import Foundation
import Learning
import Testing
import TestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Split inference end to end: a real coordinator plans a cut for a device with a fast edge link, a real
/// `fleetadapt-edge` process runs the suffix with the device's own tensors, and a real agent measures its latency
/// through it. The edge answers exactly the logits of the whole network and refuses what it must.
@Suite(.serialized) struct EdgeSplitTests {
    /// A `fleetadapt-edge` process on a free port, stopped when released.
    final class EdgeProcess {
        let process = Process()
        let url: String

        init(coordinator: String, arguments extra: [String] = []) throws {
            let path = URL(fileURLWithPath: FleetAdaptationTests.agentPath).deletingLastPathComponent().appendingPathComponent("fleetadapt-edge").path
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = ["--coordinator", coordinator, "--port", "0", "--quiet",
                                 "--cache-dir", NSTemporaryDirectory() + "fleetadapt-edge-test-\(UUID().uuidString.prefix(8))"] + extra
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            var seen = ""
            let deadline = Date().addingTimeInterval(120)
            while !seen.contains("\n") && Date() < deadline {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            guard let range = seen.range(of: "http://127.0.0.1:"),
                  let port = Int(seen[range.upperBound...].prefix { $0.isNumber }) else {
                process.terminate()
                throw TestFailure("fleetadapt-edge did not report its port: \(seen)")
            }
            url = "http://127.0.0.1:\(port)"
        }

        deinit { if process.isRunning { process.terminate(); process.waitUntilExit() } }
    }

    static func send(_ method: String, _ url: String, token: String?, body: Data? = nil) async throws -> TestResponse {
        try await TestCoordinator.send(method, url: url, token: token, body: body, headers: ["Content-Type": "application/octet-stream"])
    }

    static func safetensors(_ tensors: [String: SafeTensor]) -> Data { Data(SafeTensors.encode(tensors)) }

    static let fastLink = #"{"bandwidth_mbps": 1000, "rtt_ms": 1, "edge_server": "edge-1", "edge_server_gflops": 500}"#

    @Test func theEdgeRunsTheSuffixExactlyAndRefusesWhatItMust() async throws {
        let c = try TestCoordinator()
        _ = try await ConfigTests.publish(c)
        let split = try await ConfigTests.register(c, name: "split", gflops: 0.05, latency: 20)
        #expect(try await c.request("PUT", "/v1/agent/context", token: split.token, json: Self.fastLink).status == 200)
        let config = try #require(try await c.request("GET", "/v1/agent/config", token: split.token).object)
        let partition = try #require(config["partition"] as? [String: Any], "\(config)")
        let cut = try #require(partition["split_after_block"] as? Int)
        let variants = try #require((config["variants"] as? [[String: Any]])?.compactMap { $0["variant"] as? String })
        let plain = try await ConfigTests.register(c, name: "plain", gflops: 50)
        let edge = try EdgeProcess(coordinator: c.baseURL)
        let empty = Self.safetensors([:])

        // Credentials: none, unknown, and a device whose config runs everything locally.
        #expect(try await Self.send("PUT", edge.url + "/v1/edge/session", token: nil, body: empty).status == 401)
        #expect(try await Self.send("PUT", edge.url + "/v1/edge/session", token: "not-a-token", body: empty).status == 401)
        let notSplit = try await Self.send("PUT", edge.url + "/v1/edge/session", token: plain.token, body: empty)
        #expect(notSplit.status == 409 && notSplit.problemCode == "not_split" && notSplit.isProblem, "\(notSplit.text)")
        let noSession = try await Self.send("POST", edge.url + "/v1/edge/infer", token: split.token, body: empty)
        #expect(noSession.status == 409 && noSession.problemCode == "no_session", "\(noSession.text)")

        // Bad session bodies: not safetensors; a tensor of the prefix (the device runs it, not the edge); a wrong shape.
        let net = try ElasticPackage.loadNetwork(path: FleetAdaptationTests.baseModel)
        try net.compose(ids: variants)
        let garbage = try await Self.send("PUT", edge.url + "/v1/edge/session", token: split.token, body: Data("junk".utf8))
        #expect(garbage.status == 422 && garbage.problemFields == ["body"], "\(garbage.text)")
        let stemWeight = try #require(net.model.namedTensors()["stem.0.weight"])
        let prefixTensor = try await Self.send("PUT", edge.url + "/v1/edge/session", token: split.token,
                                               body: Self.safetensors(["stem.0.weight": stemWeight]))
        #expect(prefixTensor.status == 422 && prefixTensor.problemFields == ["tensors.stem.0.weight"], "\(prefixTensor.text)")
        let lastAdapter = try #require(net.adapterTensorNames(position: net.positions.count - 1).sorted().first)
        let wrongShape = try await Self.send("PUT", edge.url + "/v1/edge/session", token: split.token,
                                             body: Self.safetensors([lastAdapter: SafeTensor(floats: [1, 2, 3], shape: [3])]))
        #expect(wrongShape.status == 422 && wrongShape.problemFields == ["tensors.\(lastAdapter)"], "\(wrongShape.text)")
        #expect(try await Self.send("POST", edge.url + "/v1/edge/infer", token: split.token, body: empty).problemCode == "no_session")

        // A session with the device's own (here: changed) adapter after the cut.
        let adapterShape = try #require(net.model.store.entry(lastAdapter)?.shape)
        let adapterValues = (0..<adapterShape.reduce(1, *)).map { Float(($0 % 7) - 3) * 0.01 }
        let opened = try await Self.send("PUT", edge.url + "/v1/edge/session", token: split.token,
                                         body: Self.safetensors([lastAdapter: SafeTensor(floats: adapterValues, shape: adapterShape)]))
        #expect(opened.status == 200, "\(opened.text)")
        #expect(opened.object?["split_after_block"] as? Int == cut)
        #expect(opened.object?["tensors_installed"] as? Int == 1)
        #expect(opened.object?["device_id"] as? String == split.id)
        try net.model.store.set(lastAdapter, adapterValues)

        // Exactness: prefix here + suffix there == the whole network here, bit for bit.
        let images = try FashionMNIST.load(split: .test, limit: 8)
        let x = images.tensor(Array(0..<8))
        let whole = net.model.forward(x, training: false)
        let features = net.model.forwardPrefix(x, through: cut)
        let answer = try await Self.send("POST", edge.url + "/v1/edge/infer", token: split.token,
                                         body: Self.safetensors(["x": SafeTensor(floats: features.data, shape: features.shape)]))
        #expect(answer.status == 200, "\(answer.text)")
        let logits = try #require(try SafeTensors.decode(Array(answer.body)).tensors["logits"])
        #expect(logits.shape == whole.shape)
        #expect(try logits.floats().map(\.bitPattern) == whole.data.map(\.bitPattern))

        // Bad inference bodies name `x` (or `body`); another device cannot use this session.
        let wrongCut = try await Self.send("POST", edge.url + "/v1/edge/infer", token: split.token,
                                           body: Self.safetensors(["x": SafeTensor(floats: [Float](repeating: 0, count: 10), shape: [1, 10, 1, 1])]))
        #expect(wrongCut.status == 422 && wrongCut.problemFields == ["x"], "\(wrongCut.text)")
        let missing = try await Self.send("POST", edge.url + "/v1/edge/infer", token: split.token, body: Self.safetensors(["y": stemWeight]))
        #expect(missing.status == 422 && missing.problemFields == ["x"], "\(missing.text)")
        let notFinite = try await Self.send("POST", edge.url + "/v1/edge/infer", token: split.token,
                                            body: Self.safetensors(["x": SafeTensor(floats: [Float](repeating: .nan, count: features.count / 8),
                                                                                    shape: [1] + Array(features.shape.dropFirst()))]))
        #expect(notFinite.status == 422 && notFinite.problemFields == ["x"], "\(notFinite.text)")
        #expect(try await Self.send("POST", edge.url + "/v1/edge/infer", token: split.token, body: Data("junk".utf8)).problemFields == ["body"])
        #expect(try await Self.send("POST", edge.url + "/v1/edge/infer", token: plain.token, body: empty).problemCode == "no_session")
        // None of that broke the session.
        #expect(try await Self.send("POST", edge.url + "/v1/edge/infer", token: split.token,
                                    body: Self.safetensors(["x": SafeTensor(floats: features.data, shape: features.shape)])).status == 200)
    }

    /// Several devices, each with its own adapter after the cut, infer concurrently through one edge server: every
    /// answer is exactly that device's whole network (sessions never mix, and one device's requests serialise).
    @Test func concurrentDevicesEachGetTheirOwnNetwork() async throws {
        let c = try TestCoordinator()
        _ = try await ConfigTests.publish(c)
        let edge = try EdgeProcess(coordinator: c.baseURL)
        let images = try FashionMNIST.load(split: .test, limit: 4)
        let x = images.tensor(Array(0..<4))
        var expected: [(token: String, features: Tensor, logits: [UInt32])] = []
        for d in 0..<3 {
            let device = try await ConfigTests.register(c, name: "concurrent-\(d)", gflops: 0.05, latency: 20)
            #expect(try await c.request("PUT", "/v1/agent/context", token: device.token, json: Self.fastLink).status == 200)
            let config = try #require(try await c.request("GET", "/v1/agent/config", token: device.token).object)
            let cut = try #require((config["partition"] as? [String: Any])?["split_after_block"] as? Int)
            let net = try ElasticPackage.loadNetwork(path: FleetAdaptationTests.baseModel)
            try net.compose(ids: try #require((config["variants"] as? [[String: Any]])?.compactMap { $0["variant"] as? String }))
            let adapter = try #require(net.adapterTensorNames(position: net.positions.count - 1).sorted().first)
            let shape = try #require(net.model.store.entry(adapter)?.shape)
            let values = (0..<shape.reduce(1, *)).map { Float(($0 + d) % 5 - 2) * 0.02 * Float(d + 1) }
            try net.model.store.set(adapter, values)
            let opened = try await Self.send("PUT", edge.url + "/v1/edge/session", token: device.token,
                                             body: Self.safetensors([adapter: SafeTensor(floats: values, shape: shape)]))
            #expect(opened.status == 200, "\(opened.text)")
            expected.append((device.token, net.model.forwardPrefix(x, through: cut), net.model.forward(x, training: false).data.map(\.bitPattern)))
        }
        #expect(Set(expected.map(\.logits)).count == 3, "the devices' adapters must give different logits")
        let url = edge.url + "/v1/edge/infer"
        let requests = expected.map { (token: $0.token, body: Self.safetensors(["x": SafeTensor(floats: $0.features.data, shape: $0.features.shape)])) }
        let answers = try await withThrowingTaskGroup(of: (Int, [UInt32]?).self) { group in
            for _ in 0..<8 {
                for (d, request) in requests.enumerated() {
                    group.addTask {
                        let r = try await Self.send("POST", url, token: request.token, body: request.body)
                        return (d, try? SafeTensors.decode(Array(r.body)).tensors["logits"]?.floats().map(\.bitPattern))
                    }
                }
            }
            var all: [(Int, [UInt32]?)] = []
            for try await a in group { all.append(a) }
            return all
        }
        #expect(answers.count == 24)
        for (d, logits) in answers { #expect(logits == expected[d].logits, "device \(d)") }
    }

    /// The real agent, given the edge's URL, adapts, then measures its latency split at the planned cut; the
    /// device's metrics say so.
    @Test func anAgentMeasuresItsLatencyThroughTheEdge() async throws {
        let c = try TestCoordinator()
        let model = try await ConfigTests.publish(c)
        let device = try await ConfigTests.register(c, name: "split-agent", gflops: 0.05, latency: 20)
        let edge = try EdgeProcess(coordinator: c.baseURL)
        let data = try FleetAdaptationTests.deviceData(9)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: FleetAdaptationTests.agentPath)
        agent.arguments = ["--coordinator", c.baseURL, "--data-dir", data, "--cache-dir", data + "-cache", "--poll-wait", "2", "--max-jobs", "1",
                           "--edge-server", "edge-1", "--bandwidth-mbps", "1000", "--rtt-ms", "1", "--edge-server-gflops", "500",
                           "--edge-url", edge.url]
        var env = ProcessInfo.processInfo.environment
        env["FLEETADAPT_TOKEN"] = device.token
        agent.environment = env
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        defer { if agent.isRunning { agent.terminate() } }

        // The agent's context report makes the planner cut the network.
        let deadline = Date().addingTimeInterval(60)
        var cut: Int?
        while cut == nil && Date() < deadline {
            cut = ((try await c.request("GET", "/v1/devices/\(device.id)/config").object)?["partition"] as? [String: Any])?["split_after_block"] as? Int
            if cut == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        let planned = try #require(cut)
        // The agent reported the declared 1 ms plus the round trip it measured to the edge.
        let context = try await c.request("GET", "/v1/devices/\(device.id)").object?["context"] as? [String: Any]
        #expect((context?["rtt_ms"] as? Double ?? 0) > 1, "\(String(describing: context))")
        let created = try await c.request("POST", "/v1/domains", json: """
            {"name": "contrast", "model_id": "\(model)", "selector": {"device_ids": ["\(device.id)"]},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 50},
             "job": {"loss": "shot-im", "steps": 10, "timeout_s": 300, "max_attempts": 2, "batch_size": 32, "learning_rate": 0.002}}
            """)
        #expect(created.status == 201, "\(created.text)")
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let end = Date().addingTimeInterval(180)
        while Date() < end, try await c.request("GET", "/v1/campaigns/\(campaign)").object?["status"] as? String != "completed" {
            try await Task.sleep(for: .milliseconds(200))
        }
        let metrics = try await c.request("GET", "/v1/devices/\(device.id)/metrics")
        let items = (metrics.object?["items"] as? [[String: Any]]) ?? []
        let values = try #require(items.compactMap { $0["values"] as? [String: Any] }.first { $0["split_after_block"] != nil }, "\(metrics.text)")
        #expect(values["split_after_block"] as? Double == Double(planned))
        #expect((values["latency_ms"] as? Double ?? 0) > 0)
        print("split after block \(planned): measured \(values["latency_ms"] ?? "none") ms through the edge")
    }

    /// The served path split through a real edge: an agent with `--serve` and a config that cuts its network runs
    /// the prefix, the edge runs the suffix, and the answer says so (no fallback, link and edge time) and equals the
    /// whole network's answer on the device.
    @Test func anAgentServesASplitPredictionThroughTheEdge() async throws {
        let c = try TestCoordinator()
        _ = try await ConfigTests.publish(c)
        let device = try await ConfigTests.register(c, name: "split-server", gflops: 0.05, latency: 20)
        let edge = try EdgeProcess(coordinator: c.baseURL)
        let data = try FleetAdaptationTests.deviceData(10)
        let logPath = data + "-agent.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: FleetAdaptationTests.agentPath)
        agent.arguments = ["--coordinator", c.baseURL, "--data-dir", data, "--cache-dir", data + "-cache", "--poll-wait", "2",
                           "--edge-server", "edge-1", "--bandwidth-mbps", "1000", "--rtt-ms", "1", "--edge-server-gflops", "500",
                           "--edge-url", edge.url, "--serve", "127.0.0.1:0", "--config-poll-seconds", "0.2", "--edge-deadline-ms", "5000"]
        var env = ProcessInfo.processInfo.environment
        env["FLEETADAPT_TOKEN"] = device.token
        agent.environment = env
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        agent.standardOutput = log
        agent.standardError = log
        try agent.run()
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }

        // The agent's context report makes the planner cut the network; the service follows that config.
        var port = 0
        var planned: Int?
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if port == 0, let line = text.split(separator: "\n").first(where: { $0.contains("inference service on 127.0.0.1:") }),
               let p = line.split(separator: ":").dropFirst(2).first.flatMap({ Int($0.prefix { $0.isNumber }) }) { port = p }
            if planned == nil {
                planned = ((try await c.request("GET", "/v1/devices/\(device.id)/config").object)?["partition"] as? [String: Any])?["split_after_block"] as? Int
            }
            if port > 0, let planned, let model = try? RawHTTPClient.request(port: port, "GET", "/v1/model").json(),
               model["split_after_block"] as? Int == planned { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let cut = try #require(planned, "no cut planned")
        try #require(port > 0, "the agent did not report its service: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        let model = try RawHTTPClient.request(port: port, "GET", "/v1/model").json()
        #expect(model["split_after_block"] as? Int == cut, "the served network is split as planned: \(model)")

        let x = try FashionMNIST.load(split: .test, limit: 8).tensor([3])
        let body = "{\"shape\":\(Array(x.shape.dropFirst())),\"data\":[\(x.data.map { String($0) }.joined(separator: ","))]}"
        let r = try RawHTTPClient.request(port: port, "POST", "/v1/predict?k=3", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
        #expect(r.status == 200, "\(r.text)")
        let answer = try r.json()
        #expect(answer["edge_fallback"] as? Bool == false, "\(answer["fallback_reason"] ?? "")")
        #expect(answer["split_after_block"] as? Int == cut)
        let latency = try #require(answer["latency_ms"] as? [String: Double])
        #expect((latency["device"] ?? 0) > 0 && (latency["edge"] ?? 0) > 0 && (latency["link"] ?? -1) >= 0, "\(latency)")
        #expect((latency["link"] ?? 0) + (latency["edge"] ?? 0) > 0)

        // The whole network of the same combination, here: the same probabilities and top-k.
        let combination = try #require(answer["combination"] as? [String])
        let net = try ElasticPackage.read(path: FleetAdaptationTests.baseModel).network()
        try net.compose(ids: combination)
        let logits = InferenceGraph(try net.model.graph(), store: net.model.store).forward([x])[0].data.map(Double.init)
        let m = logits.max()!
        let e = logits.map { exp($0 - m) }
        let local = e.map { $0 / e.reduce(0, +) }
        let prediction = try #require((answer["predictions"] as? [[String: Any]])?.first)
        let served = try #require(prediction["probabilities"] as? [Double])
        #expect(served.count == local.count && zip(served, local).allSatisfy { abs($0 - $1) < 1e-4 }, "\(served) vs \(local)")
        let top = (prediction["top_k"] as? [[String: Any]] ?? []).compactMap { $0["index"] as? Int }
        #expect(top == Array(local.indices.sorted { local[$0] > local[$1] }.prefix(3)))
        print(String(format: "split after block %d served through the edge: device %.3f ms, link %.3f ms, edge %.3f ms", cut,
                     latency["device"] ?? 0, latency["link"] ?? 0, latency["edge"] ?? 0))
    }
}
