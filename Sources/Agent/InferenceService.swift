import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import HTTPServer
import ImageIO
import Learning
import Synchronization

/// How the agent's inference service listens (`--serve HOST:PORT`, `--serve-socket PATH`) and behaves.
public struct ServingConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (tests).
    public var port: Int
    /// Whether to listen on `host:port` (false: only on `socketPath`).
    public var listensOnTCP = true
    /// A Unix-domain socket to serve on as well (mode 0660, removed on exit; see `UnixListenSocket`).
    public var socketPath: String?
    /// Micro-batching: a single-input predict waits up to this long (ms) for others to share its forward; 0 = off.
    public var batchWindowMs: Double = 0
    /// Most inputs one micro-batch forwards.
    public var maxBatch: Int = 16
    /// How long a split prediction waits for the edge server before it runs the whole network on the device.
    public var edgeDeadlineMs: Double = 250
    /// After a fallback, the edge is not asked again for this long (every request would wait the deadline).
    public var edgeRetrySeconds: Double = 5
    /// How often the coordinator's config is read to follow a new combination or cut.
    public var configPollSeconds: Double = 5
    /// Predictions in the drift window.
    public var driftWindow: Int = 256
    public var threads: Int = 4
    /// One line per request on standard error.
    public var accessLog = false

    public init(host: String = "127.0.0.1", port: Int = 9100) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT`, `[IPv6]:PORT`; nil when it is neither.
    public static func parse(_ text: String) -> ServingConfiguration? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return ServingConfiguration(host: host, port: port)
    }
}

/// The device's inference service: `POST /v1/predict` (an image or a tensor), `POST /v1/predict/batch`,
/// `GET /v1/model`, `GET /metrics`, `GET /healthz` over the HTTPServer module (libmicrohttpd), contract
/// `openapi/agent.yaml`. It serves the device's current combination with its current adapters and batch-norm
/// statistics (`ServedNetwork`); the job loop hands it every adaptation, and it follows the coordinator's config.
public final class InferenceService: Sendable {
    let configuration: AgentConfiguration
    let serving: ServingConfiguration
    let client: any AgentCoordinator
    let log: @Sendable (String) -> Void
    let metrics = ServingMetrics()
    let drift: DriftWindow
    private let current = Shared<ServedNetwork?>(nil)
    private let generations = Shared(0)
    /// What the last adaptation left (model, combination, tensors), installed into every network built after it.
    private let lastAdapted = Shared<(modelID: UUID, tensors: [String: SafeTensor])?>(nil)
    /// One build at a time (a config poll and an adaptation may both want one).
    private let building = Mutex(())
    private let edgeDownUntil = Shared<ContinuousClock.Instant?>(nil)
    private let stopFlag = Shared(false)
    private let lastError = Shared<String?>(nil)
    let router = Router()
    /// The TCP listener (nil with only a Unix socket) and the Unix-socket listener; both serve `router`.
    let server: HTTPServer?
    let socketServer: HTTPServer?
    let batcher: MicroBatcher?

    init(configuration: AgentConfiguration, serving: ServingConfiguration, client: any AgentCoordinator, log: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.serving = serving
        self.client = client
        self.log = log
        drift = DriftWindow(capacity: serving.driftWindow)
        var http = HTTPServerConfiguration(host: serving.host, port: serving.port, threadPoolSize: serving.threads,
                                           accessLog: serving.accessLog ? HTTPServerConfiguration.standardErrorLog : nil)
        http.defaultBodyLimit = 1 << 20
        let routes = router
        server = serving.listensOnTCP ? HTTPServer(configuration: http, router: routes) : nil
        socketServer = serving.socketPath.map { path in
            var local = http
            local.unixSocketPath = path
            return HTTPServer(configuration: local, router: routes)
        }
        batcher = serving.batchWindowMs > 0 ? MicroBatcher(windowMs: serving.batchWindowMs, maxBatch: serving.maxBatch) : nil
        PredictRoutes(service: self).register(on: router)
    }

    /// The network serving now (nil before the first one is built).
    var served: ServedNetwork? { current.value }
    public var port: Int { server?.boundPort ?? 0 }
    /// Every (method, pattern) served, for the contract test against openapi/agent.yaml.
    public var routes: [(method: HTTPMethod, pattern: String)] { router.routes }

    /// Starts listening and following the coordinator's config (a thread polls it every `configPollSeconds`).
    public func start() throws {
        if let server {
            try server.start()
            log("agent: inference service on \(serving.host):\(port) (POST /v1/predict)")
        }
        if let socketServer, let path = serving.socketPath {
            do { try socketServer.start() } catch {
                server?.shutdown(gracePeriod: .zero)
                throw error
            }
            log("agent: inference service on unix:\(path) (POST /v1/predict)")
        }
        if let batcher {
            log(String(format: "agent: micro-batching single predictions: window %.2f ms, at most %d per forward",
                       serving.batchWindowMs, batcher.maxBatch))
        }
        Thread { [self] in
            while !stopFlag.value {
                refresh()
                var waited = 0.0
                while waited < serving.configPollSeconds && !stopFlag.value {
                    Thread.sleep(forTimeInterval: 0.1)
                    waited += 0.1
                }
            }
        }.start()
    }

    public func shutdown() {
        stopFlag.set(true)
        server?.shutdown(gracePeriod: .seconds(2))
        socketServer?.shutdown(gracePeriod: .seconds(2))
    }

    // MARK: Building and swapping

    /// Replaces the served network; requests in flight finish on the one they started with.
    func swap(to network: ServedNetwork) {
        let previous = current.value
        current.set(network)
        if previous != nil { metrics.swapped() }
        log("agent: serving generation \(network.generation): model \(network.modelID.uuidString.lowercased()) config \(network.configVersion.map(String.init) ?? "none") "
            + "[\(network.combination.joined(separator: ", "))]\(network.split.map { ", split after block \($0.afterBlock)" } ?? "")")
    }

    /// Follows the coordinator's config: a new version (or the first one) builds and swaps in its network; without
    /// a config, a local `--model` package serves its original combination. Failures are logged once each.
    func refresh() {
        do {
            switch try client.config(attempts: 1) {
            case .config(let view):
                let now = current.value
                guard now?.configVersion != view.version || now?.modelID != view.decision.modelID else { return }
                try rebuild(modelID: view.decision.modelID, variants: view.decision.variants.map(\.variant), configVersion: view.version,
                            partition: view.decision.partition)
            case .noConfig, .refused, .unexpected:
                guard current.value == nil, configuration.modelPath != nil else { return }
                try rebuild(modelID: UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), variants: [], configVersion: nil, partition: nil)
            }
            lastError.set(nil)
        } catch {
            let message = "\(error)"
            if lastError.value != message { log("agent: inference service could not follow the config: \(message)") }
            lastError.set(message)
        }
    }

    /// An adaptation finished: serve its tensors on its combination (under the current config version), and take
    /// the new baseline of the drift watch on the data it adapted on.
    func adapted(modelID: UUID, variants: [String], tensors: [String: SafeTensor], data: LabeledImages) {
        lastAdapted.set((modelID, tensors))
        let version = current.value.flatMap { $0.modelID == modelID ? $0.configVersion : nil }
        var partition: PartitionView?
        if case .config(let view)? = try? client.config(attempts: 1), view.decision.modelID == modelID,
           view.decision.variants.map(\.variant) == variants {
            partition = view.decision.partition
        }
        do {
            let network = try rebuild(modelID: modelID, variants: variants, configVersion: version, partition: partition)
            drift.setBaseline(Self.baseline(network, data))
            let b = drift.snapshot
            log(String(format: "agent: drift baseline after adaptation: entropy %.4f, confidence %.4f on %d local images",
                       b.baselineEntropy ?? 0, b.baselineConfidence ?? 0, b.baselineSamples ?? 0))
        } catch {
            log("agent: inference service could not serve the adapted network: \(error)")
        }
    }

    /// Mean entropy and confidence of `network` on (at most 256 of) the local images.
    static func baseline(_ network: ServedNetwork, _ data: LabeledImages) -> DriftWindow.Baseline {
        let n = min(256, data.count)
        guard n > 0 else { return DriftWindow.Baseline(entropy: 0, confidence: 1, samples: 0) }
        let logits = network.whole.forward([data.tensor(Array(0..<n))])[0]
        let k = logits.shape[1]
        var entropy = 0.0, confidence = 0.0
        for i in 0..<n {
            let s = ClassScores(logits: logits.data[(i * k)..<((i + 1) * k)])
            entropy += s.entropy
            confidence += s.confidence
        }
        return DriftWindow.Baseline(entropy: entropy / Double(n), confidence: confidence / Double(n), samples: n)
    }

    /// Builds the network of a model, combination and cut (with the last adaptation's tensors when they are for
    /// this model), then swaps it in.
    @discardableResult
    func rebuild(modelID: UUID, variants: [String], configVersion: Int?, partition: PartitionView?) throws -> ServedNetwork {
        try building.withLock { _ in
            let path = try configuration.modelPath ?? client.packageFile(for: modelID, cacheDirectory: configuration.cacheDirectory)
            let tensors = lastAdapted.value.flatMap { $0.modelID == modelID ? $0.tensors : nil } ?? [:]
            let generation = generations.update { g -> Int in g += 1; return g }
            let network = try Self.build(package: path, modelID: modelID, variants: variants, configVersion: configVersion, partition: partition,
                                         tensors: tensors, generation: generation, edge: configuration.edgeURL.map {
                                             EdgeLink(url: $0, token: configuration.token, tls: configuration.tls)
                                         }, log: log)
            swap(to: network)
            return network
        }
    }

    /// Loads and verifies the package, composes `variants` (all originals when empty), installs `tensors` (the
    /// names and shapes the network has; others are ignored), and opens the edge session when `partition` cuts it.
    static func build(package path: String, modelID: UUID, variants: [String], configVersion: Int?, partition: PartitionView?,
                      tensors: [String: SafeTensor], generation: Int, edge: EdgeLink?, log: @Sendable (String) -> Void) throws -> ServedNetwork {
        let package = try ElasticPackage.read(path: path)
        let net = try package.network()
        try net.compose(ids: variants.isEmpty ? net.positions.map { $0.variants[0].id } : variants)
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            guard let entry = net.model.store.entry(name), entry.shape == tensor.shape, let values = try? tensor.floats(),
                  values.allSatisfy(\.isFinite) else { continue }
            try net.model.store.set(name, values)
        }
        let model = net.model
        let classes = model.head.outFeatures
        let names = package.manifest.classNames
            ?? (package.manifest.provenance.dataset.lowercased().contains("fashion") && classes == FashionMNIST.classNames.count
                ? FashionMNIST.classNames : (0..<classes).map { "class_\($0)" })
        let whole = InferenceGraph(try model.graph(), store: model.store)
        let shape = model.inputShape
        let combination = net.choiceIDs
        var split: SplitPath?
        if let partition, let edge, (-1..<net.positions.count).contains(partition.splitAfterBlock) {
            do {
                _ = try edge.open(net, split: partition.splitAfterBlock, tensors: JobEnvironment.adaptedTensors(model))
                split = SplitPath(afterBlock: partition.splitAfterBlock, edgeComputeMs: partition.edgeLatencyMs, link: edge, network: net)
            } catch {
                log("agent: the edge session could not be opened (\(error)); serving the whole network on the device")
            }
        }
        return ServedNetwork(generation: generation, modelID: modelID, configVersion: configVersion, combination: combination,
                             inputShape: shape, classNames: names, input: try PackageInput(manifest: package.manifest), whole: whole, split: split)
    }

    // MARK: Predicting

    struct Outcome: Sendable {
        var logits: Tensor
        var deviceMs: Double
        var linkMs: Double
        var edgeMs: Double
        var splitAfterBlock: Int?
        var fallback: String?
    }

    /// Runs `x` through the micro-batcher when it is on and `x` is one input, otherwise at once (`run`).
    func predict(_ x: Tensor, on network: ServedNetwork) -> Outcome {
        guard let batcher, x.shape.first == 1 else { return run(x, on: network) }
        return batcher.run(x, on: network, forward: { self.run($0, on: $1) }, counted: { self.metrics.batched($0) })
    }

    /// Runs `x` (N, C, H, W) on `network`: whole on the device, or the prefix here and the suffix on the edge,
    /// falling back to the whole network here when the edge does not answer within the deadline.
    func run(_ x: Tensor, on network: ServedNetwork) -> Outcome {
        func local(_ reason: String?, deviceMs: Double = 0) -> Outcome {
            let start = ContinuousClock.now
            let logits = network.whole.forward([x])[0]
            return Outcome(logits: logits, deviceMs: deviceMs + Self.ms(ContinuousClock.now - start), linkMs: 0, edgeMs: 0, fallback: reason)
        }
        guard let split = network.split else { return local(nil) }
        if let until = edgeDownUntil.value, ContinuousClock.now < until {
            metrics.edge(fallback: true)
            return local("the edge server failed recently; not asked again before \(Int(serving.edgeRetrySeconds)) s have passed")
        }
        let start = ContinuousClock.now
        let features = split.prefix(x)
        let prefixMs = Self.ms(ContinuousClock.now - start)
        let answer = Shared<Result<Tensor, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let link = split.link
        let sent = ContinuousClock.now
        Thread {
            answer.set(Result { try link.infer(features) })
            done.signal()
        }.start()
        let deadline = serving.edgeDeadlineMs
        var reason: String
        if done.wait(timeout: .now() + .microseconds(Int(deadline * 1000))) == .success, let result = answer.value {
            let roundTrip = Self.ms(ContinuousClock.now - sent)
            switch result {
            case .success(let logits) where logits.shape == [x.shape[0], network.classNames.count]:
                metrics.edge(fallback: false)
                let edgeMs = min(split.edgeComputeMs, roundTrip)
                return Outcome(logits: logits, deviceMs: prefixMs, linkMs: roundTrip - edgeMs, edgeMs: edgeMs, splitAfterBlock: split.afterBlock)
            case .success(let logits):
                reason = "the edge server answered logits of shape \(logits.shape)"
            case .failure(let error):
                reason = "the edge server failed: \(error)"
            }
        } else {
            reason = "the edge server did not answer within \(Int(deadline)) ms"
        }
        metrics.edge(fallback: true)
        edgeDownUntil.set(ContinuousClock.now + .milliseconds(Int(serving.edgeRetrySeconds * 1000)))
        log("agent: split prediction ran on the device: \(reason)")
        return local(reason, deviceMs: prefixMs)
    }

    static func ms(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }
}
