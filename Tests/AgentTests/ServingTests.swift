@testable import Agent
import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import HTTPServer
import Learning
import Testing
import TestSupport

/// The device's inference service (issue 14, items 2–3) over real HTTP on loopback (libmicrohttpd), serving the
/// test package: images and tensors in, top-k out; bad input refused naming the field; atomic swaps under load;
/// the edge fallback; metrics and the drift window.
@Suite struct ServingTests {
    struct Running {
        let service: InferenceService
        let coordinator: InMemoryCoordinator
        let log: LogLines
        var port: Int { service.port }
    }

    /// A service on an ephemeral port serving the test package (a local `--model`, so no config is needed).
    func start(config: CoordinatorClient.ConfigAnswer = .noConfig, edgeURL: String? = nil, deadlineMs: Double = 250,
               configure: (inout ServingConfiguration) -> Void = { _ in }) async throws -> Running {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        coordinator.change { $0.configAnswer = config }
        var configuration = AgentFixture.configuration(data: try ImageFiles.temporaryDirectory("serve"))
        configuration.modelPath = AgentFixture.packagePath
        configuration.edgeURL = edgeURL
        var serving = ServingConfiguration(host: "127.0.0.1", port: 0)
        serving.edgeDeadlineMs = deadlineMs
        serving.configPollSeconds = 0.2
        configure(&serving)
        let log = LogLines()
        let service = InferenceService(configuration: configuration, serving: serving, client: coordinator, log: log.write)
        try service.start()
        try await eventually("a network is served") { service.served != nil }
        return Running(service: service, coordinator: coordinator, log: log)
    }

    static let test: LabeledImages = try! FashionMNIST.load(split: .test).subset(0..<64)

    static func jsonTensor(_ t: Tensor) -> String {
        "{\"shape\":\(t.shape.dropFirst()),\"data\":[\(t.data.map { String($0) }.joined(separator: ","))]}"
    }

    func post(_ port: Int, _ target: String, _ contentType: String, _ body: [UInt8]) throws -> RawResponse {
        try RawHTTPClient.request(port: port, "POST", target, headers: [("Content-Type", contentType)], body: body)
    }

    func probabilities(_ prediction: Any?) -> [Double] { ((prediction as? [String: Any])?["probabilities"] as? [Double]) ?? [] }

    func expected(_ net: ServedNetwork, _ x: Tensor) -> [[Double]] {
        let logits = net.whole.forward([x])[0]
        let k = logits.shape[1]
        return (0..<x.shape[0]).map { i in ClassScores(logits: logits.data[(i * k)..<((i + 1) * k)]).probabilities.map(Double.init) }
    }

    func gap(_ a: [Double], _ b: [Double]) -> Double { a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max() ?? 0 : .infinity }

    @Test func predictAnswersPNGJSONSafetensorsAndBatchesWithTopKFromTheServedNetwork() async throws {
        let s = try await start()
        defer { s.service.shutdown() }
        let net = try #require(s.service.served)
        let x0 = Self.test.tensor([0]), x1 = Self.test.tensor([1])

        let png = try post(s.port, "/v1/predict?k=3", "image/png", ImageFiles.png(Self.test, 0))
        #expect(png.status == 200, "\(png.text)")
        let answer = try png.json()
        let prediction = try #require((answer["predictions"] as? [[String: Any]])?.first)
        let p = probabilities(prediction)
        #expect(gap(p, expected(net, x0)[0]) < 1e-5, "an image is preprocessed as the engine normalises its data")
        #expect(abs(p.reduce(0, +) - 1) < 1e-4)
        let top = try #require(prediction["top_k"] as? [[String: Any]])
        #expect(top.count == 3)
        let best = p.indices.max { p[$0] < p[$1] }!
        #expect(top[0]["index"] as? Int == best && top[0]["label"] as? String == FashionMNIST.classNames[best])
        let entropy = -p.reduce(0) { $0 + ($1 > 0 ? $1 * log($1) : 0) }
        #expect(abs((prediction["entropy"] as? Double ?? -1) - entropy) < 1e-4)
        #expect(answer["combination"] as? [String] == net.combination)
        #expect(answer["generation"] as? Int == net.generation)
        #expect(answer["edge_fallback"] as? Bool == false)
        let latency = try #require(answer["latency_ms"] as? [String: Double])
        #expect(Set(latency.keys) == ["device", "link", "edge", "total"])
        #expect(latency["device"]! > 0 && latency["link"] == 0 && latency["edge"] == 0)

        let json = try post(s.port, "/v1/predict?k=10", "application/json", Array(Self.jsonTensor(x1).utf8))
        #expect(json.status == 200, "\(json.text)")
        let jp = try #require((try json.json()["predictions"] as? [[String: Any]])?.first)
        #expect(gap(probabilities(jp), expected(net, x1)[0]) < 1e-5)
        #expect((jp["top_k"] as? [Any])?.count == 10)

        let pair = Self.test.tensor([2, 3])
        let st = try post(s.port, "/v1/predict", "application/octet-stream",
                          SafeTensors.encode(["x": SafeTensor(floats: pair.data, shape: pair.shape)]))
        #expect(st.status == 200, "\(st.text)")
        let sp = try #require(try st.json()["predictions"] as? [Any])
        let e = expected(net, pair)
        #expect(sp.count == 2 && gap(probabilities(sp[0]), e[0]) < 1e-5 && gap(probabilities(sp[1]), e[1]) < 1e-5)

        let items = "{\"items\":[{\"image\":\"\(Data(ImageFiles.png(Self.test, 0)).base64EncodedString())\"},\(Self.jsonTensor(x1))]}"
        let batch = try post(s.port, "/v1/predict/batch", "application/json", Array(items.utf8))
        #expect(batch.status == 200, "\(batch.text)")
        let bp = try #require(try batch.json()["predictions"] as? [Any])
        #expect(bp.count == 2 && gap(probabilities(bp[0]), p) < 1e-6 && gap(probabilities(bp[1]), probabilities(jp)) < 1e-6)

        let model = try RawHTTPClient.request(port: s.port, "GET", "/v1/model")
        #expect(model.status == 200)
        #expect(try model.json()["class_names"] as? [String] == FashionMNIST.classNames)
    }

    /// Every bad input is a 4xx problem+json whose `errors` name the field; nothing is served for it.
    @Test func badInputIsAProblemNamingTheField() async throws {
        let s = try await start()
        defer { s.service.shutdown() }
        func expectProblem(_ r: RawResponse, _ status: Int, field: String, _ what: String) throws {
            #expect(r.status == status, "\(what): \(r.text.prefix(300))")
            #expect(r.headers["Content-Type"]?.hasPrefix("application/problem+json") == true, "\(what)")
            let fields = ((try? r.json())?["errors"] as? [[String: Any]])?.compactMap { $0["field"] as? String } ?? []
            #expect(fields.contains { $0.hasPrefix(field) }, "\(what): fields \(fields) in \(r.text.prefix(300))")
        }
        func fixture(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: ImageFiles.fixtures + "/" + name))) }
        let x = Self.test.tensor([0])
        try expectProblem(try post(s.port, "/v1/predict", "image/png", Array("hello, not a PNG".utf8)), 422, field: "body", "not an image")
        try expectProblem(try post(s.port, "/v1/predict", "image/jpeg", try fixture("truncated.jpg")), 422, field: "body", "truncated JPEG")
        try expectProblem(try post(s.port, "/v1/predict", "image/png", try fixture("huge.png")), 422, field: "body", "20000×20000 header")
        try expectProblem(try post(s.port, "/v1/predict", "image/png", []), 422, field: "body", "zero bytes")
        try expectProblem(try post(s.port, "/v1/predict", "application/json", Array("{\"shape\":[3,28,28],\"data\":[1]}".utf8)), 422,
                          field: "shape", "wrong tensor shape")
        try expectProblem(try post(s.port, "/v1/predict", "application/json", Array("{\"shape\":[1,28,28],\"data\":[1,2]}".utf8)), 422,
                          field: "data", "wrong value count")
        var nan = x.data
        nan[5] = .nan
        try expectProblem(try post(s.port, "/v1/predict", "application/octet-stream", SafeTensors.encode(["x": SafeTensor(floats: nan, shape: x.shape)])),
                          422, field: "x.data[5]", "NaN")
        try expectProblem(try post(s.port, "/v1/predict", "application/json", Array("{\"shape\":[1,28,28],\"data\":[\"NaN\"]}".utf8)), 422,
                          field: "data", "NaN as a string")
        try expectProblem(try post(s.port, "/v1/predict", "text/plain", Array("1,2,3".utf8)), 400, field: "Content-Type", "media type")
        try expectProblem(try post(s.port, "/v1/predict?k=0", "image/png", ImageFiles.png(Self.test, 0)), 400, field: "k", "k = 0")
        try expectProblem(try post(s.port, "/v1/predict?k=11", "image/png", ImageFiles.png(Self.test, 0)), 400, field: "k", "k over the classes")
        try expectProblem(try post(s.port, "/v1/predict/batch", "application/json", Array("{\"items\":[]}".utf8)), 422, field: "items", "empty batch")
        try expectProblem(try post(s.port, "/v1/predict/batch", "application/json", Array("{\"items\":[{\"image\":\"@@@\"}]}".utf8)), 422,
                          field: "items[0].image", "not base64")
        let big = [UInt8](repeating: 0x41, count: 50 << 20)
        let r = try post(s.port, "/v1/predict", "image/png", big)
        #expect(r.status == 413, "50 MB body: \(r.status) \(r.text.prefix(200))")
        #expect(r.headers["Content-Type"]?.hasPrefix("application/problem+json") == true)

        // Nothing of that was served: no prediction counted, the drift window empty; the service still answers.
        #expect(s.service.drift.snapshot.windowSize == 0)
        #expect(try post(s.port, "/v1/predict", "image/png", ImageFiles.png(Self.test, 0)).status == 200)
        #expect(s.service.drift.snapshot.windowSize == 1)
    }

    /// 100 swaps between two combinations while 4 clients predict: every request succeeds, and each answer's
    /// probabilities are exactly those of the network its generation names (none mixes two).
    @Test func swapsUnderConcurrentLoadFailNoRequestAndMixNone() async throws {
        let s = try await start()
        defer { s.service.shutdown() }
        let a = try #require(s.service.served)
        let other = try ElasticPackage.loadNetwork(path: AgentFixture.packagePath).positions.map { $0.variants.last!.id }
        let b = try InferenceService.build(package: AgentFixture.packagePath, modelID: a.modelID, variants: other, configVersion: 2, partition: nil,
                                           tensors: [:], generation: a.generation + 1, edge: nil, log: { _ in })
        #expect(b.combination != a.combination)
        let x = Self.test.tensor([7])
        let expectedBy = [a.generation: expected(a, x)[0], b.generation: expected(b, x)[0]]
        #expect(gap(expectedBy[a.generation]!, expectedBy[b.generation]!) > 1e-3, "the two combinations must answer differently")
        let body = Array(Self.jsonTensor(x).utf8)
        let swaps = Shared(0)
        let answers = Shared<[(status: Int, generation: Int?, probabilities: [Double])]>([])
        let clientsDone = Shared(0)
        let port = s.port
        for _ in 0..<4 {
            Thread {
                var mine = 0
                while swaps.value < 100 || mine < 20 {
                    let r = try? RawHTTPClient.request(port: port, "POST", "/v1/predict", headers: [("Content-Type", "application/json")], body: body)
                    let json = try? r?.json()
                    let p = ((json?["predictions"] as? [[String: Any]])?.first?["probabilities"] as? [Double]) ?? []
                    answers.update { $0.append((r?.status ?? 0, json?["generation"] as? Int, p)) }
                    mine += 1
                }
                clientsDone.update { $0 += 1 }
            }.start()
        }
        Thread {
            for i in 0..<100 {
                s.service.swap(to: i % 2 == 0 ? b : a)
                swaps.update { $0 += 1 }
                Thread.sleep(forTimeInterval: 0.003)
            }
        }.start()
        try await eventually("the clients finish", within: 600) { clientsDone.value == 4 }
        let all = answers.value
        #expect(all.count >= 80)
        let failed = all.filter { $0.status != 200 }
        #expect(failed.isEmpty, "\(failed.count) failed requests: \(failed.prefix(3).map(\.status))")
        let mixed = all.filter { r in r.generation.flatMap { expectedBy[$0] }.map { gap($0, r.probabilities) > 1e-5 } ?? true }
        #expect(mixed.isEmpty, "\(mixed.count) answers whose probabilities are not their generation's")
        #expect(Set(all.compactMap(\.generation)) == [a.generation, b.generation], "both networks served")
        #expect(s.service.metrics.swaps == 100)
        let metrics = try RawHTTPClient.request(port: s.port, "GET", "/metrics").text
        #expect(metrics.contains("fleetadapt_agent_model_swaps_total 100"))
        #expect(metrics.contains("fleetadapt_agent_requests_total{route=\"/v1/predict\",status=\"200\"} \(all.count)"))
        #expect(metrics.contains("fleetadapt_agent_predict_seconds_count \(all.count)"))
        #expect(metrics.contains("fleetadapt_agent_predict_seconds_bucket{le=\"+Inf\"} \(all.count)"))
    }

    /// A config that cuts the network sends the features to the edge server; one that does not answer within the
    /// deadline gets the whole network run on the device instead, said in the answer and counted in /metrics.
    @Test func aSplitPredictionFallsBackToTheDeviceWhenTheEdgeDoesNotAnswerInTime() async throws {
        // A real HTTP server standing where the edge runtime would: it opens sessions, then never answers in time.
        let router = Router()
        let modelID = UUID()
        router.add(.PUT, "/v1/edge/session", options: RouteOptions(bodyLimit: 16 << 20)) { _ in
            .json(EdgeSessionView(deviceID: UUID(), configVersion: 4, modelID: modelID, splitAfterBlock: 0, cutShape: [8, 28, 28], classes: 10, tensorsInstalled: 0))
        }
        router.add(.POST, "/v1/edge/infer", options: RouteOptions(bodyLimit: 16 << 20)) { _ in
            Thread.sleep(forTimeInterval: 2)
            throw HTTPError.serviceUnavailable("stalled")
        }
        let edge = HTTPServer(configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0, accessLog: nil), router: router)
        try edge.start()
        defer { edge.shutdown(gracePeriod: .seconds(1)) }
        let decision = PlanDecision(modelID: modelID, variants: [], partition: PartitionView(splitAfterBlock: 0, deviceLatencyMs: 1, edgeLatencyMs: 1, transferMs: 1),
                                    adapters: nil, predicted: PredictedCost(accuracy: 0.8, latencyMs: 3, memoryMB: 1, energyMJ: 1),
                                    bindingConstraint: nil, feasible: true, reason: "test", latencySource: "reference")
        let s = try await start(config: .config(DeviceConfigView(deviceID: UUID(), version: 4, decision: decision, trigger: "registration", createdAt: Date())),
                                edgeURL: "http://127.0.0.1:\(edge.boundPort)", deadlineMs: 100)
        defer { s.service.shutdown() }
        let net = try #require(s.service.served)
        #expect(net.configVersion == 4 && net.split?.afterBlock == 0, "\(s.log.all)")

        let r = try post(s.port, "/v1/predict", "image/png", ImageFiles.png(Self.test, 4))
        #expect(r.status == 200, "\(r.text)")
        let answer = try r.json()
        #expect(answer["edge_fallback"] as? Bool == true)
        #expect((answer["fallback_reason"] as? String)?.contains("did not answer within 100 ms") == true, "\(answer)")
        #expect(answer["config_version"] as? Int == 4)
        let p = probabilities((answer["predictions"] as? [Any])?.first)
        #expect(gap(p, expected(net, Self.test.tensor([4]))[0]) < 1e-5, "the fallback runs the whole network on the device")
        let metrics = try RawHTTPClient.request(port: s.port, "GET", "/metrics").text
        #expect(metrics.contains("fleetadapt_agent_edge_fallbacks_total 1"), "\(metrics)")
        #expect(metrics.contains("fleetadapt_agent_served_config_version 4"))
    }

    /// The drift window: the baseline is taken on the local data right after an adaptation; what is served after
    /// it fills the window; the answer and /metrics carry window, baseline and their differences.
    @Test func theDriftWindowComparesServedEntropyWithTheBaselineOfTheLastAdaptation() async throws {
        let s = try await start()
        defer { s.service.shutdown() }
        let clean = Self.test.subset(0..<64)
        let before = try #require(s.service.served)
        s.service.adapted(modelID: before.modelID, variants: before.combination, tensors: [:], data: clean)
        let net = try #require(s.service.served)
        #expect(net.generation == before.generation + 1, "an adaptation swaps in a new network")
        let baseline = InferenceService.baseline(net, clean)
        #expect(s.service.drift.snapshot.baselineEntropy == baseline.entropy && baseline.samples == 64)

        let shifted = try Corruption.contrast.apply(to: Self.test.subset(0..<20), severity: 5, seed: 1, firstIndex: 0)
        var entropies: [Double] = [], confidences: [Double] = []
        var last: [String: Any] = [:]
        for i in 0..<20 {
            let r = try post(s.port, "/v1/predict", "image/png", ImageFiles.png(shifted, i))
            #expect(r.status == 200)
            last = try r.json()
            let prediction = try #require((last["predictions"] as? [[String: Any]])?.first)
            entropies.append(prediction["entropy"] as! Double)
            confidences.append(prediction["confidence"] as! Double)
        }
        let drift = try #require(last["drift"] as? [String: Any])
        let window = entropies.reduce(0, +) / 20, confidence = confidences.reduce(0, +) / 20
        #expect(drift["window_size"] as? Int == 20)
        #expect(abs((drift["window_entropy"] as? Double ?? .nan) - window) < 1e-9)
        #expect(abs((drift["entropy_rise"] as? Double ?? .nan) - (window - baseline.entropy)) < 1e-9)
        #expect(abs((drift["confidence_drop"] as? Double ?? .nan) - (baseline.confidence - confidence)) < 1e-9)
        let metrics = try RawHTTPClient.request(port: s.port, "GET", "/metrics").text
        #expect(metrics.contains("fleetadapt_agent_drift_window_size 20"))
        #expect(metrics.contains("fleetadapt_agent_drift_entropy_rise "))
        #expect(metrics.contains("fleetadapt_agent_predictions_total 20"))
    }

    /// With --watch and --serve, frames newly written into the spool are classified into the drift window once each;
    /// the frames there at start are not (they are the data adapted on); nothing is deleted.
    @Test func newSpoolFramesFeedTheDriftWindowOnceEach() async throws {
        let s = try await start()
        defer { s.service.shutdown() }
        let dir = try ImageFiles.temporaryDirectory("watch")
        for i in 0..<3 { try ImageFiles.write(ImageFiles.png(Self.test, i), to: "\(dir)/old-\(i).png") }
        let watcher = SpoolWatcher(directory: dir, window: 100, service: s.service)
        #expect(watcher.scan(classify: false) == 0)
        for i in 3..<8 { try ImageFiles.write(ImageFiles.png(Self.test, i), to: "\(dir)/new-\(i).png") }
        try ImageFiles.write(Array("junk".utf8), to: "\(dir)/broken.png")
        #expect(watcher.scan(classify: true) == 5)
        #expect(watcher.scan(classify: true) == 0, "a frame is classified once")
        let drift = s.service.drift.snapshot
        #expect(drift.windowSize == 5)
        let net = try #require(s.service.served)
        let e = expected(net, Self.test.tensor(Array(3..<8)))
        let entropies = e.map { p in -p.reduce(0) { $0 + ($1 > 0 ? $1 * log($1) : 0) } }
        #expect(abs((drift.windowEntropy ?? .nan) - entropies.reduce(0, +) / 5) < 1e-4)
        #expect(try RawHTTPClient.request(port: s.port, "GET", "/metrics").text.contains("fleetadapt_agent_spooled_frames_total 5"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 9)
    }

    /// One request over a Unix-domain socket (a libc client: socket, connect, the raw HTTP exchange).
    static func unixRequest(_ path: String, _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []) throws -> RawResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RawClientError(description: "socket: \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
            raw[path.utf8.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw RawClientError(description: "connect \(path): \(String(cString: strerror(errno)))") }
        guard RawHTTPClient.send(fd, RawHTTPClient.requestBytes(method, target, headers: headers, body: body)) else {
            throw RawClientError(description: "send failed")
        }
        return try RawHTTPClient.readOneResponse(fd)
    }

    /// `--serve-socket`: the service answers over a Unix-domain socket (mode 0660), refuses to replace a file that
    /// is not a socket or a socket another service listens on, replaces a stale one, and removes its own on exit.
    @Test func aUnixSocketServesPredictionsAndIsRemovedOnShutdown() async throws {
        let dir = try ImageFiles.temporaryDirectory("socket")
        let path = dir + "/agent.sock"

        // A regular file there is refused and left as it was.
        try ImageFiles.write(Array("keep me".utf8), to: path)
        await #expect(throws: HTTPServerStartError.self) {
            _ = try await start { $0.listensOnTCP = false; $0.socketPath = path }
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
        try FileManager.default.removeItem(atPath: path)

        // A stale socket (bound, nobody listening) is replaced.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
            raw[path.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(stale)

        let s = try await start { $0.listensOnTCP = false; $0.socketPath = path }
        var status = stat()
        #expect(lstat(path, &status) == 0)
        #expect(status.st_mode & S_IFMT == S_IFSOCK)
        #expect(status.st_mode & 0o777 == 0o660, "mode \(String(status.st_mode & 0o777, radix: 8))")
        #expect(s.port == 0, "no TCP listener")

        let net = try #require(s.service.served)
        let r = try Self.unixRequest(path, "POST", "/v1/predict?k=2", headers: [("Content-Type", "image/png")], body: ImageFiles.png(Self.test, 5))
        #expect(r.status == 200, "\(r.text)")
        let prediction = try #require((try r.json()["predictions"] as? [[String: Any]])?.first)
        #expect(gap(probabilities(prediction), expected(net, Self.test.tensor([5]))[0]) < 1e-5)
        #expect((prediction["top_k"] as? [Any])?.count == 2)
        let bad = try Self.unixRequest(path, "POST", "/v1/predict", headers: [("Content-Type", "image/png")], body: Array("no".utf8))
        #expect(bad.status == 422 && bad.headers["Content-Type"]?.hasPrefix("application/problem+json") == true)
        #expect(try Self.unixRequest(path, "GET", "/healthz").status == 200)

        // A second service on the same live socket is refused; the first still answers.
        await #expect(throws: HTTPServerStartError.self) {
            _ = try await start { $0.listensOnTCP = false; $0.socketPath = path }
        }
        #expect(try Self.unixRequest(path, "GET", "/healthz").status == 200)

        s.service.shutdown()
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file is removed on exit")
    }

    /// Micro-batching (`--serve-batch-window-ms`): concurrent single predictions share forwards, and every answer is
    /// exactly its own input's (no row of another request).
    @Test func microBatchingAnswersEveryRequestWithItsOwnRow() async throws {
        let s = try await start { $0.batchWindowMs = 20; $0.maxBatch = 8 }
        defer { s.service.shutdown() }
        let net = try #require(s.service.served)
        let clients = 8, each = 6
        let inputs = (0..<clients).map { Self.test.tensor([$0]) }
        let wanted = inputs.map { expected(net, $0)[0] }
        let port = s.port
        let answers = Shared<[(client: Int, status: Int, probabilities: [Double])]>([])
        let done = Shared(0)
        for c in 0..<clients {
            let body = Array(Self.jsonTensor(inputs[c]).utf8)
            Thread {
                for _ in 0..<each {
                    let r = try? RawHTTPClient.request(port: port, "POST", "/v1/predict", headers: [("Content-Type", "application/json")], body: body)
                    let p = ((try? r?.json())?["predictions"] as? [[String: Any]])?.first?["probabilities"] as? [Double] ?? []
                    answers.update { $0.append((c, r?.status ?? 0, p)) }
                }
                done.update { $0 += 1 }
            }.start()
        }
        try await eventually("the clients finish", within: 300) { done.value == clients }
        let all = answers.value
        #expect(all.count == clients * each)
        #expect(all.allSatisfy { $0.status == 200 })
        let wrong = all.filter { gap($0.probabilities, wanted[$0.client]) > 1e-5 }
        #expect(wrong.isEmpty, "\(wrong.count) answers are not their own input's")
        let metrics = try RawHTTPClient.request(port: s.port, "GET", "/metrics").text
        func value(_ name: String) -> Int {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
        }
        let batches = value("fleetadapt_agent_microbatches_total"), batched = value("fleetadapt_agent_microbatched_requests_total")
        #expect(batched == clients * each, "every single prediction went through the batcher")
        #expect(batches >= 1 && batches < batched, "\(batches) forwards for \(batched) requests: some were shared")
        print("micro-batching: \(batched) requests in \(batches) forwards")
    }

    /// openapi/agent.yaml is the service's contract: its operations are exactly the routes, each with a unique
    /// operationId and tags.
    @Test func routesEqualTheContractAndEveryOperationHasAnID() throws {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        let service = InferenceService(configuration: AgentFixture.configuration(data: NSTemporaryDirectory()), serving: ServingConfiguration(port: 0),
                                       client: coordinator, log: { _ in })
        let served = Set(service.routes.map { "\($0.method) \($0.pattern)" })
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("openapi/agent.yaml").path
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let ids = try OpenAPIOperations.operationIDs(file)
        #expect(Set(ids.keys) == served)
        let named = ids.values.compactMap { $0 }
        #expect(named.count == ids.count, "operations without an operationId: \(ids.filter { $0.value == nil }.keys.sorted())")
        #expect(Set(named).count == named.count)
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("      tags: [") }.count == ids.count)
    }
}
