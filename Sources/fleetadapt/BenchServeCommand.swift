import ArgumentParser
import CommandSupport
import Coordinator
import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning
import Synchronization

/// The device's inference service as an application sees it: a real `fleetadapt-agent --serve` against the bare
/// engine forward of the same combination, in the same run.
struct BenchServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Latency, throughput and swap safety of the agent's inference service (fleetadapt-agent --serve).",
        discussion: HelpText.reflow("""
            Starts a coordinator on its own embedded PostgreSQL (in a temporary directory), publishes the package,
            registers one device and starts a real fleetadapt-agent for it with --model (the same package) and
            --serve on loopback. Then, with seeded inputs of the package's input shape sent as safetensors:
              latency     batch-1 POST /v1/predict p50/p99 from one keep-alive client, against the bare engine
                          forward (InferenceGraph) of the combination the agent serves, timed in this process;
                          the goal is an overhead of at most 15 % or 0.2 ms, whichever is larger;
              throughput  --clients concurrent keep-alive clients for --seconds, without micro-batching and then
                          with it (a second agent with --serve-batch-window-ms);
              swaps       --swaps config changes (the device's latency budget alternates, the coordinator
                          re-plans it, the agent follows within --config-poll-seconds 0.05 and swaps its served
                          network) while 4 clients predict: every failed request is counted (goal: 0).
            The agents' logs go to the temporary directory and are removed with it.
              fleetadapt bench serve --package /tmp/fashion.fap
            """))

    @Option(help: "An elastic package from `fleetadapt model build` (or `model import`).")
    var package: String

    @Option(help: "Timed requests (and bare forwards) for the latency comparison.")
    var requests: Int = 1000

    @Option(help: "Concurrent clients of the throughput measurement.")
    var clients: Int = 8

    @Option(help: "Seconds per throughput measurement.")
    var seconds: Int = 5

    @Option(help: "Micro-batching window (ms) of the second throughput measurement.")
    var batchWindowMs: Double = 0.5

    @Option(help: "Most inputs per micro-batched forward.")
    var maxBatch: Int = 16

    @Option(help: "Config changes (swaps of the served network) under load.")
    var swaps: Int = 100

    @Option(help: "HTTP worker threads of the agent's service (--serve-threads); at least --clients lets every client's request be in a batch.")
    var serverThreads: Int = 8

    func validate() throws {
        guard requests >= 10, clients >= 1, seconds >= 1, swaps >= 0, serverThreads >= 1 else {
            throw ValidationError("--requests must be at least 10; --clients, --seconds and --server-threads at least 1")
        }
        guard batchWindowMs > 0 && batchWindowMs <= 1000 else { throw ValidationError("--batch-window-ms must be in (0, 1000]") }
        guard (1...64).contains(maxBatch) else { throw ValidationError("--max-batch must be 1–64") }
    }

    func run() throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let agentPath = bin + "/fleetadapt-agent"
        guard FileManager.default.isExecutableFile(atPath: agentPath) else { throw ValidationError("no fleetadapt-agent next to this executable (\(agentPath))") }
        let packageData = try Data(contentsOf: URL(fileURLWithPath: package))
        let manifest = try ElasticPackage.read(path: package).manifest
        let dir = NSTemporaryDirectory() + "fleetadapt-bench-serve-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let key = "bench-admin-key-" + UUID().uuidString.lowercased()
        let app = try CoordinatorApp(configuration: CoordinatorConfiguration(host: "127.0.0.1", port: 0, dataDirectory: dir + "/coordinator", adminKey: key,
                                                                             threadPoolSize: 4, maxDatabaseConnections: 4, accessLog: false))
        defer { app.shutdown() }
        let coordinatorURL = "http://127.0.0.1:\(app.port)"
        let admin = CoordinatorClient(baseURL: coordinatorURL, token: key)
        let modelID = try admin.publishModel(name: "bench-serve", package: packageData).id
        let full = manifest.reference.fullNetworkLatencyMs
        let budgets = [full * 2, full * 0.6]
        let created = try admin.registerDevice(DeviceRegistration(
            name: "bench-serve", hardware: Hardware(class: "bench", gflops: manifest.reference.gflops, memoryMB: 4096),
            constraints: Constraints(latencyBudgetMs: budgets[0], memoryBudgetMB: 1024)))
        let deviceID = created.device.id
        print("package \(manifest.name) (model \(modelID.uuidString.lowercased())); coordinator on \(coordinatorURL); agent: \(serverThreads) HTTP threads")

        let children = ChildProcesses()
        defer { children.stopAll() }
        let tokenFile = dir + "/secrets/device-token"
        try ChildProcesses.writeSecret(created.token, to: tokenFile)
        func startAgent(_ extra: [String], log: String) throws -> Int {
            let port = try LoopbackPort.free()
            try children.start(agentPath, ["--coordinator", coordinatorURL, "--token-file", tokenFile, "--data-dir", dir + "/data", "--model", package,
                                           "--serve", "127.0.0.1:\(port)", "--config-poll-seconds", "0.05", "--drift-report-interval", "0",
                                           "--poll-wait", "30", "--serve-threads", String(serverThreads)] + extra,
                               log: dir + "/" + log)
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let model = try? ServeConnection(port: port).json("GET", "/v1/model"), model["config_version"] is Int { return port }
                Thread.sleep(forTimeInterval: 0.1)
            }
            throw ValidationError("the agent did not serve its config within 60 s (log: \((try? String(contentsOfFile: dir + "/" + log, encoding: .utf8)) ?? ""))")
        }

        // 1. Latency: the served predict against the bare forward of the combination it serves.
        var port = try startAgent([], log: "agent-1.log")
        let served = try ServeConnection(port: port).json("GET", "/v1/model")
        let combination = served["combination"] as? [String] ?? []
        let shape = served["input_shape"] as? [Int] ?? []
        let net = try ElasticPackage.read(path: package).network()
        try net.compose(ids: combination)
        let graph = InferenceGraph(try net.model.graph(), store: net.model.store)
        var rng = SeededRandom(seed: 7)
        let inputs = (0..<16).map { _ in Tensor(shape: [1] + shape, data: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) }) }
        let bodies = inputs.map { SafeTensors.encode(["x": SafeTensor(floats: $0.data, shape: $0.shape)]) }
        for i in 0..<50 { _ = graph.forward([inputs[i % inputs.count]]) }
        var bare: [Double] = []
        for i in 0..<requests {
            let start = ContinuousClock.now
            _ = graph.forward([inputs[i % inputs.count]])
            bare.append(Self.ms(ContinuousClock.now - start))
        }
        let client = try ServeConnection(port: port)
        for i in 0..<50 { _ = try client.predict(bodies[i % bodies.count]) }
        var http: [Double] = []
        for i in 0..<requests {
            let start = ContinuousClock.now
            guard try client.predict(bodies[i % bodies.count]) == 200 else { throw ValidationError("a predict failed") }
            http.append(Self.ms(ContinuousClock.now - start))
        }
        let (b50, b99, s50, s99) = (Self.percentile(bare, 0.5), Self.percentile(bare, 0.99), Self.percentile(http, 0.5), Self.percentile(http, 0.99))
        let overhead = s50 - b50
        let met = overhead <= max(0.15 * b50, 0.2)
        print("\ncombination [\(combination.joined(separator: ", "))], input \(shape), \(requests) batch-1 requests (safetensors body) over one keep-alive connection")
        print(Self.column("", 34) + Self.column("p50 ms", 10, left: true) + Self.column("p99 ms", 10, left: true))
        print(Self.column("bare engine forward (in process)", 34) + String(format: "%10.3f%10.3f", b50, b99))
        print(Self.column("served POST /v1/predict", 34) + String(format: "%10.3f%10.3f", s50, s99))
        print(String(format: "served / bare p50 %.3f, overhead %.3f ms (goal: ≤ 15 %% or ≤ 0.2 ms, whichever is larger): %@", s50 / b50, overhead,
                     (met ? "met" : "not met") as NSString))

        // 2. Throughput: concurrent clients, without and with micro-batching.
        let plain = try Self.load(port: port, clients: clients, seconds: Double(seconds), bodies: bodies)
        children.stopAll()
        port = try startAgent(["--serve-batch-window-ms", String(batchWindowMs), "--serve-max-batch", String(maxBatch)], log: "agent-2.log")
        let batched = try Self.load(port: port, clients: clients, seconds: Double(seconds), bodies: bodies)
        let metrics = try ServeConnection(port: port).text("GET", "/metrics")
        let forwards = Self.metric(metrics, "fleetadapt_agent_microbatches_total"), answered = Self.metric(metrics, "fleetadapt_agent_microbatched_requests_total")
        print("\n\(clients) concurrent clients, \(seconds) s each")
        print(Self.column("", 34) + Self.column("requests/s", 12, left: true) + Self.column("p50 ms", 10, left: true)
              + Self.column("p99 ms", 10, left: true) + Self.column("failed", 8, left: true))
        for (name, r) in [("no micro-batching", plain), (String(format: "micro-batching %.2f ms, ≤ %d", batchWindowMs, maxBatch), batched)] {
            print(Self.column(name, 34) + String(format: "%12.0f%10.3f%10.3f%8d", r.rps, r.p50, r.p99, r.failed))
        }
        print(String(format: "micro-batching / none: %.2f× the throughput; mean batch %.2f inputs per forward", batched.rps / plain.rps,
                     forwards > 0 ? answered / forwards : 0))

        // 3. Swaps under load: the coordinator re-plans the device back and forth; the agent follows each new config.
        guard swaps > 0 else { return }
        let swapsBefore = Self.metric(try ServeConnection(port: port).text("GET", "/metrics"), "fleetadapt_agent_model_swaps_total")
        let stop = Locked(false)
        let tally = Locked((ok: 0, failed: 0))
        let finished = DispatchGroup()
        for c in 0..<4 {
            finished.enter()
            let agentPort = port
            Thread {
                var connection = try? ServeConnection(port: agentPort)
                var i = c
                while !stop.withLock({ $0 }) {
                    let status = (try? connection?.predict(bodies[i % bodies.count])) ?? nil
                    tally.withLock { t in if status == 200 { t.ok += 1 } else { t.failed += 1 } }
                    if status != 200 { connection = try? ServeConnection(port: agentPort) }
                    i += 4
                }
                finished.leave()
            }.start()
        }
        let started = ContinuousClock.now
        var followed = 0
        var version = served["config_version"] as? Int ?? 0
        let probe = try ServeConnection(port: port)
        for i in 0..<swaps {
            let budget = budgets[(i + 1) % 2]
            _ = try admin.patchDevice(id: deviceID, DevicePatch(constraints: Constraints(latencyBudgetMs: budget, memoryBudgetMB: 1024)), ifMatch: nil)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let v = try probe.json("GET", "/v1/model")["config_version"] as? Int, v != version {
                    version = v
                    followed += 1
                    break
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        stop.withLock { $0 = true }
        finished.wait()
        let elapsed = Self.ms(ContinuousClock.now - started) / 1000
        let swapsAfter = Self.metric(try ServeConnection(port: port).text("GET", "/metrics"), "fleetadapt_agent_model_swaps_total")
        let t = tally.withLock { $0 }
        print(String(format: "\n%d config changes in %.1f s (budget alternating %.2f / %.2f ms): the agent followed %d, swapped its network %.0f times; "
                     + "4 clients sent %d predicts meanwhile, %d failed (goal: 0)",
                     swaps, elapsed, budgets[0], budgets[1], followed, swapsAfter - swapsBefore, t.ok + t.failed, t.failed))
    }

    struct Load { var rps: Double; var p50: Double; var p99: Double; var failed: Int }

    /// `clients` threads, each with its own keep-alive connection, predicting for `seconds`.
    static func load(port: Int, clients: Int, seconds: Double, bodies: [[UInt8]]) throws -> Load {
        let results = Locked<(latencies: [Double], failed: Int)>(([], 0))
        let group = DispatchGroup()
        let start = ContinuousClock.now
        let end = start + .milliseconds(Int(seconds * 1000))
        for c in 0..<clients {
            group.enter()
            Thread {
                var mine: [Double] = [], failed = 0
                var connection = try? ServeConnection(port: port)
                var i = c
                while ContinuousClock.now < end {
                    let t0 = ContinuousClock.now
                    let status = (try? connection?.predict(bodies[i % bodies.count])) ?? nil
                    if status == 200 { mine.append(ms(ContinuousClock.now - t0)) } else {
                        failed += 1
                        connection = try? ServeConnection(port: port)
                    }
                    i += clients
                }
                results.withLock { r in r.latencies += mine; r.failed += failed }
                group.leave()
            }.start()
        }
        group.wait()
        let elapsed = ms(ContinuousClock.now - start) / 1000
        let r = results.withLock { $0 }
        return Load(rps: Double(r.latencies.count) / elapsed, p50: percentile(r.latencies, 0.5), p99: percentile(r.latencies, 0.99), failed: r.failed)
    }

    static func column(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return left ? fill + s : s + fill
    }

    static func metric(_ text: String, _ name: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }

    static func percentile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
    }

    static func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
}

/// A value behind a lock that threads share (a class, so escaping closures can hold it).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// One keep-alive HTTP/1.1 connection to the agent on loopback, blocking, as small as a benchmark client can be
/// (so that what it measures is the service, not the client): requests with Content-Length bodies, answers read
/// by their Content-Length.
final class ServeConnection {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw ValidationError("connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    /// POST /v1/predict with a safetensors body; the status.
    func predict(_ body: [UInt8]) throws -> Int {
        try exchange("POST", "/v1/predict", contentType: "application/octet-stream", body: body).status
    }

    func json(_ method: String, _ target: String) throws -> [String: Any] {
        let r = try exchange(method, target, contentType: nil, body: [])
        return (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
    }

    func text(_ method: String, _ target: String) throws -> String {
        String(decoding: try exchange(method, target, contentType: nil, body: []).body, as: UTF8.self)
    }

    func exchange(_ method: String, _ target: String, contentType: String?, body: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.count)\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        let request = Array((head + "\r\n").utf8) + body
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ValidationError("send failed: \(String(cString: strerror(errno)))") }
            sent += n
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            if buffer.count >= 4 {
                for i in 0...(buffer.count - 4) where buffer[i] == 13 && Array(buffer[i..<(i + 4)]) == separator {
                    headerEnd = i
                    break
                }
            }
            if headerEnd == nil { try fill() }
        }
        let header = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        let lines = header.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw ValidationError("not an HTTP answer: \(header.prefix(80))")
        }
        let length = lines.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first ?? 0
        let bodyStart = headerEnd! + 4
        while buffer.count < bodyStart + length { try fill() }
        let answer = Array(buffer[bodyStart..<(bodyStart + length)])
        buffer.removeFirst(bodyStart + length)
        return (status, answer)
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw ValidationError("the connection closed") }
        buffer.append(contentsOf: chunk[..<n])
    }
}
