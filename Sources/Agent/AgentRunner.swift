import FleetAPI
import FleetClient
import Foundation
import ElasticModel
import Learning
import Synchronization

/// The device agent's loop: report context, long-poll for a job, run it (one at a time), heartbeat while it
/// runs, upload what it produced, report the result. On stop it finishes the job in hand and exits; a job it
/// abandons is requeued by the coordinator when its lease expires.
/// The agent never exits because the coordinator is unreachable: it retries with capped backoff (a log line per
/// failure), and a finished result waits on disk (`PendingResults`) until the coordinator has it, across restarts.
public final class AgentRunner: Sendable {
    public let configuration: AgentConfiguration
    let client: CoordinatorClient
    let stopFlag = Shared(false)
    /// The round trip to the edge server as last measured here (ms): at start an empty request, after a split
    /// measurement what an inference request really cost beyond the planner's edge compute. Reported with the
    /// context on top of the declared link, so the planner plans from it.
    let edgeRoundTripMs = Shared<Double?>(nil)
    let log: @Sendable (String) -> Void

    public init(configuration: AgentConfiguration, log: @escaping @Sendable (String) -> Void = AgentRunner.writeLine) {
        self.configuration = configuration
        client = CoordinatorClient(baseURL: configuration.coordinatorURL, token: configuration.token)
        self.log = log
    }

    /// The agent's log: one write(2) per line on standard output, so that a line reaches a file or a pipe (a
    /// supervisor's journal, a test) at once, never held back in a stdio buffer nor lost with it when the process dies.
    @Sendable public static func writeLine(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    public func stop() { stopFlag.set(true) }
    var stopped: Bool { stopFlag.value }

    /// Runs until stopped (or `maxJobs` done). Returns the number of jobs completed.
    public func run() throws -> Int {
        let (data, metadata) = try LocalDataset.read(directory: configuration.dataDirectory)
        log("agent: \(data.count) local images (\(metadata["corruption"] ?? "clean")), labels \(data.labels == nil ? "absent" : "present, for reporting only")")
        let pending = try PendingResults(directory: configuration.stateDirectory)
        do {
            try reportContext(persistent: true)
            // Results finished before a restart (or an outage that outlasted the previous run) go first.
            for entry in pending.all() {
                log("agent: delivering the saved result of job \(entry.jobID.uuidString.lowercased()) attempt \(entry.result.attempt)")
                try deliver(entry, store: pending)
            }
        } catch {
            if stopped { return 0 }
            throw error
        }
        var done = 0
        while !stopped && (configuration.maxJobs == 0 || done < configuration.maxJobs) {
            let answer: CoordinatorClient.LeaseAnswer
            do {
                answer = try client.leaseNext(wait: configuration.pollWait, retry: persistently)
            } catch {
                if stopped { break }
                throw error
            }
            switch answer {
            case .noJob: continue
            case .job(let job):
                do {
                    try runJob(job, data: data, pending: pending)
                } catch {
                    // Only a stop ends a delivery; the result stays on disk for the next start.
                    if stopped { break }
                    throw error
                }
                done += 1
            case .refused(let r):
                throw CoordinatorClient.Failure(description: "the coordinator refused this device (HTTP \(r.status)): \(String(decoding: r.body, as: UTF8.self))")
            case .unexpected:
                Thread.sleep(forTimeInterval: 1)
            }
        }
        return done
    }

    /// How a request that must reach the coordinator is sent: retried until it answers (or the agent is stopped).
    var persistently: CoordinatorClient.Retry {
        .untilAnswered(maxDelay: configuration.maxRetryDelay, shouldStop: { [weak self] in self?.stopped ?? true }, onFailure: log)
    }

    /// - Parameter persistent: retry until the coordinator answers (at start), rather than a few times (mid-job).
    func reportContext(persistent: Bool = false) throws {
        // MemAvailable from /proc/meminfo, in MiB.
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let availableKB = meminfo.split(separator: "\n").first { $0.hasPrefix("MemAvailable:") }
            .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Double($0) }
        let freeMB = availableKB.map { $0 / 1024 }
        var context = configuration.context
        context.freeMemoryMB = context.freeMemoryMB ?? freeMB
        // The planner must see what a round trip to the edge really costs here (HTTP stack included), on top of
        // the declared link; an unreachable edge server leaves the declared figure.
        if let edgeURL = configuration.edgeURL {
            if edgeRoundTripMs.value == nil, let measured = EdgeLink(url: edgeURL, token: configuration.token).roundTripMs() {
                edgeRoundTripMs.set(measured)
            }
            if let measured = edgeRoundTripMs.value {
                context.rttMs = (context.rttMs ?? 0) + measured
                log(String(format: "agent: round trip to the edge server %.2f ms; reporting rtt %.2f ms", measured, context.rttMs!))
            }
        }
        try client.reportContext(context, retry: persistent ? persistently : .attempts(8))
    }

    /// Runs one job with a heartbeat thread beside it; the heartbeat stops the work if the lease is lost. The
    /// finished result is saved to `pending` first, then delivered (heartbeats go on meanwhile, so an outage
    /// shorter than the lease keeps the attempt).
    func runJob(_ job: LeasedJob, data: LabeledImages, pending: PendingResults) throws {
        log("agent: job \(job.id.uuidString.lowercased()) (\(job.document.kind.rawValue), attempt \(job.attempt), \(job.document.loss.rawValue), \(job.document.steps) steps)")
        let beating = Shared(true)
        let progress = Shared<[String: Double]>([:])
        let leaseLost = Shared(false)
        let heartbeat = Thread { [client] in
            while beating.value {
                Thread.sleep(forTimeInterval: 1)
                guard beating.value else { break }
                if case .lost? = try? client.heartbeat(job: job.id, attempt: job.attempt, progress: progress.value, attempts: 2) {
                    leaseLost.set(true)
                    break
                }
            }
        }
        heartbeat.start()
        defer { beating.set(false) }
        let outcome: (result: JobResult, artifact: Data?)
        do {
            switch job.document.kind {
            case .adapt: outcome = try adapt(job, data: data, progress: progress)
            case .profile: outcome = (try profile(job), nil)
            case .apply: outcome = (try apply(job, data: data), nil)
            }
        } catch {
            outcome = (JobResult(attempt: job.attempt, outcome: .failed, error: "\(error)"), nil)
        }
        let (result, artifact) = outcome
        if leaseLost.value {
            beating.set(false)
            log("agent: lease of job \(job.id.uuidString.lowercased()) was lost; its result is dropped")
            return
        }
        let entry: PendingResults.Entry
        do {
            entry = try pending.save(job: job.id, result: result, artifact: artifact)
        } catch {
            log("agent: could not save the result of job \(job.id.uuidString.lowercased()) to \(pending.directory) (\(error)); delivering it from memory")
            try deliver(PendingResults.Entry(jobID: job.id, result: result, hasArtifact: artifact != nil), store: nil, artifact: artifact)
            return
        }
        try deliver(entry, store: pending)
    }

    /// Delivers a finished result: the artifact (if any), then the result, each retried until the coordinator
    /// answers. Any answer ends it (the entry is removed): a refused artifact turns the result into a failure that
    /// says why; 404/409 mean this attempt no longer holds the job, so its result is dropped.
    func deliver(_ entry: PendingResults.Entry, store: PendingResults?, artifact inMemory: Data? = nil) throws {
        var result = entry.result
        if let artifact = inMemory ?? store?.artifact(of: entry), result.outcome == .succeeded {
            switch try client.uploadArtifact(job: entry.jobID, attempt: result.attempt, artifact: artifact, retry: persistently) {
            case .stored:
                break
            case .notHeld(let status):
                log("agent: job \(entry.jobID.uuidString.lowercased()) attempt \(result.attempt) no longer holds the job (artifact: HTTP \(status)); its result is dropped")
                store?.remove(entry)
                return
            case .refused(let status, let body):
                result = JobResult(attempt: result.attempt, outcome: .failed,
                                   error: "artifact upload refused: HTTP \(status) \(body)")
            }
        } else if entry.hasArtifact, result.outcome == .succeeded {
            result = JobResult(attempt: result.attempt, outcome: .failed, error: "the saved artifact could not be read")
        }
        let status = try client.reportResult(job: entry.jobID, result: result, retry: persistently)
        log("agent: job \(entry.jobID.uuidString.lowercased()) \(result.outcome.rawValue) → HTTP \(status)")
        store?.remove(entry)
    }

    /// Trains the block adapters (and batch-norm affine parameters) on the local images with the requested
    /// unsupervised loss, uploads them, and measures entropy (and accuracy, when labels exist) before and after.
    /// Returns the result and the adapters to upload with it (`deliver` uploads them before the result).
    func adapt(_ job: LeasedJob, data: LabeledImages, progress: Shared<[String: Double]>) throws -> (JobResult, Data?) {
        guard let loss = AdaptationLoss(rawValue: job.document.loss.rawValue) else {
            return (JobResult(attempt: job.attempt, outcome: .failed, error: "unknown loss \(job.document.loss.rawValue)"), nil)
        }
        let net = try network(for: job.document)
        let model = net.model
        let entropyBefore = Trainer.meanEntropy(model, data)
        let accuracyBefore = data.labels == nil ? nil : Trainer.accuracy(model, data)
        var unlabeled = data
        unlabeled.labels = nil
        let start = Date()
        let report = Adaptation.adapt(model, on: unlabeled, loss: loss, steps: job.document.steps, batchSize: min(job.document.batchSize, data.count),
                                      learningRate: Float(job.document.learningRate), trainable: .adaptersAndNorms, seed: UInt64(job.attempt))
        let computeSeconds = Date().timeIntervalSince(start)
        if configuration.slowdown > 1 { Thread.sleep(forTimeInterval: computeSeconds * (configuration.slowdown - 1)) }
        let seconds = Date().timeIntervalSince(start)
        progress.set(["step": Double(report.steps), "total_steps": Double(job.document.steps)])
        let entropyAfter = Trainer.meanEntropy(model, data)
        let accuracyAfter = data.labels == nil ? nil : Trainer.accuracy(model, data)
        // Inference latency of the planned combination with its adapters at batch 1 (split with the edge server
        // when the config says so): the figure the planner predicted.
        let latency = measureLatency(net, data: data, modelID: job.document.modelID)
        let artifact = Data(SafeTensors.encode(adaptedTensors(model), metadata: ["loss": loss.rawValue, "samples": String(report.samplesUsed)]))
        return (JobResult(attempt: job.attempt, outcome: .succeeded, metrics: JobMetrics(
            entropyBefore: entropyBefore, entropyAfter: entropyAfter, accuracyBefore: accuracyBefore, accuracyAfter: accuracyAfter,
            trainSeconds: seconds, energyMJ: seconds * 1000 * configuration.powerWatts, samples: data.count, steps: report.steps,
            latencyMs: latency.ms, splitAfterBlock: latency.split)), artifact)
    }

    /// Installs the domain's aggregated adapters (trained by other devices) without training, re-estimates the
    /// batch-norm statistics of its combination on the local images (forward passes only: affordable where
    /// training is not, and most of the gain on a corruption shift — `fleetadapt bench adapt`), and measures what
    /// that changes on this device's data.
    func apply(_ job: LeasedJob, data: LabeledImages) throws -> JobResult {
        let aggregate: Data
        switch try client.domainAdapter(job.document.domainID) {
        case .adapter(let body):
            aggregate = body
        case .missing(let status):
            return JobResult(attempt: job.attempt, outcome: .failed, error: "no aggregated adapter for the domain yet (HTTP \(status))")
        case .corrupt:
            return JobResult(attempt: job.attempt, outcome: .failed, error: "aggregated adapter download is corrupt")
        }
        let net = try network(for: job.document)
        let model = net.model
        let entropyBefore = Trainer.meanEntropy(model, data)
        let accuracyBefore = data.labels == nil ? nil : Trainer.accuracy(model, data)
        let start = Date()
        // Only adaptation's tensors are installed: the adapters and this combination's batch norms (the aggregate
        // also holds other combinations' norms, which are skipped). Anything else — a frozen weight, a shape
        // that differs from the package's, a value that is not finite — refuses the whole aggregate.
        let layout = AdaptationLayout(network: net)
        let mine = try layout.tensors(for: net.choiceIDs), anyCombination = layout.allTensors
        var install: [(String, [Float])] = []
        for (name, tensor) in try SafeTensors.decode(Array(aggregate)).tensors.sorted(by: { $0.key < $1.key }) {
            guard let shape = anyCombination[name] else {
                throw CoordinatorClient.Failure(description: "aggregated adapter has \(name), which is not an adapter or batch-norm tensor of the package")
            }
            let values = try tensor.floats()
            guard tensor.shape == shape, values.allSatisfy(\.isFinite) else {
                throw CoordinatorClient.Failure(description: "aggregated adapter's \(name) is not finite F32 of shape \(shape) (got \(tensor.shape))")
            }
            if mine[name] != nil { install.append((name, values)) }
        }
        for (name, values) in install { try model.store.set(name, values) }
        var unlabeled = data
        unlabeled.labels = nil
        let batch = max(1, min(job.document.batchSize, data.count))
        let passes = Adaptation.adapt(model, on: unlabeled, loss: .bnStats, steps: (data.count + batch - 1) / batch, batchSize: batch).steps
        let computeSeconds = Date().timeIntervalSince(start)
        if configuration.slowdown > 1 { Thread.sleep(forTimeInterval: computeSeconds * (configuration.slowdown - 1)) }
        let seconds = Date().timeIntervalSince(start)
        log("agent: applied the aggregated adapters and re-estimated batch-norm statistics in \(passes) forward passes")
        let latency = measureLatency(net, data: data, modelID: job.document.modelID)
        return JobResult(attempt: job.attempt, outcome: .succeeded, metrics: JobMetrics(
            entropyBefore: entropyBefore, entropyAfter: Trainer.meanEntropy(model, data), accuracyBefore: accuracyBefore,
            accuracyAfter: data.labels == nil ? nil : Trainer.accuracy(model, data), trainSeconds: seconds,
            energyMJ: seconds * 1000 * configuration.powerWatts, samples: data.count, steps: 0,
            latencyMs: latency.ms, splitAfterBlock: latency.split))
    }

    /// What adaptation changes: the position adapters (shared by every variant, so they adapt any combination), and
    /// the batch-norm affine parameters and running statistics of the blocks this device runs (without the
    /// statistics, the affine parameters would meet source statistics).
    func adaptedTensors(_ model: Model) -> [String: SafeTensor] {
        let running = Set(model.allNorms.map(\.name))
        return model.namedTensors().filter { name, _ in
            name.contains(".adapter.") || running.contains { name.hasPrefix($0 + ".") && !name.dropFirst($0.count + 1).contains(".") }
        }
    }

    /// Median batch-1 latency of the composed network here. When an edge server is configured and the
    /// coordinator's config for this model and combination cuts the network, it is measured split: the prefix
    /// here, the cut features over the link (its declared bandwidth and round trip simulated on top of the real
    /// transfer, as `slowdown` simulates slower hardware), the suffix on the edge server — after checking that the
    /// edge's logits equal this device's. Returns the split it measured, nil for on-device.
    func measureLatency(_ net: ElasticNetwork, data: LabeledImages, modelID: UUID) -> (ms: Double, split: Int?) {
        let model = net.model
        let one = data.tensor([0])
        func onDevice() -> (ms: Double, split: Int?) {
            (Profiler.medianMs(runs: 20, warmup: 5) { _ = model.forward(one, training: false) } * configuration.slowdown, nil)
        }
        guard let edgeURL = configuration.edgeURL else { return onDevice() }
        do {
            guard case .config(let config) = try client.config(attempts: 3) else { return onDevice() }
            guard let partition = config.decision.partition else { return onDevice() }
            guard config.decision.modelID == modelID, config.decision.variants.map(\.variant) == net.choiceIDs else {
                log("agent: config \(config.version) is for another model or combination than this job's; latency measured on the device")
                return onDevice()
            }
            let split = partition.splitAfterBlock
            let link = EdgeLink(url: edgeURL, token: configuration.token)
            let session = try link.open(net, split: split, tensors: adaptedTensors(model))
            let reference = model.forward(one, training: false)
            let remote = try link.infer(model.forwardPrefix(one, through: split))
            let gap = remote.shape == reference.shape ? zip(reference.data, remote.data).map { abs($0 - $1) }.max() ?? 0 : .infinity
            guard gap <= 1e-4 else {
                log("agent: the edge server's logits differ from this device's by \(gap); latency measured on the device")
                return onDevice()
            }
            let cutBytes = session.cutShape.reduce(4, *)
            let linkSeconds = configuration.context.bandwidthMbps.map { Double(cutBytes) * 8 / ($0 * 1e6) } ?? 0
            let rttSeconds = (configuration.context.rttMs ?? 0) / 1000
            var samples: [(total: Double, prefix: Double, edge: Double)] = []
            for run in 0..<25 {
                let start = Date()
                let features = model.forwardPrefix(one, through: split)
                let prefixSeconds = Date().timeIntervalSince(start)
                let simulated = prefixSeconds * (configuration.slowdown - 1) + linkSeconds + rttSeconds
                if simulated > 0 { Thread.sleep(forTimeInterval: simulated) }
                let sent = Date()
                _ = try link.infer(features)
                let end = Date()
                if run >= 5 {
                    samples.append((end.timeIntervalSince(start) * 1000, prefixSeconds * configuration.slowdown * 1000, end.timeIntervalSince(sent) * 1000))
                }
            }
            samples.sort { $0.total < $1.total }
            let median = samples[samples.count / 2]
            log(String(format: "agent: split after block %d with %@: logits equal the device's (max difference %g); median %.2f ms = "
                       + "prefix %.2f ms + declared link %.2f ms + edge round trip %.2f ms (+ sleep overshoot)",
                       split, edgeURL, gap, median.total, median.prefix, (linkSeconds + rttSeconds) * 1000, median.edge))
            // What the edge round trip cost beyond the planner's edge compute is the link's real round trip here.
            // When it is clearly more than reported, report it: the coordinator re-plans from it.
            let observed = median.edge - partition.edgeLatencyMs
            if let reported = edgeRoundTripMs.value, observed > reported * 1.2 + 0.05 {
                edgeRoundTripMs.set(observed)
                do {
                    try reportContext()
                } catch {
                    log("agent: could not report the measured round trip: \(error)")
                }
            }
            return (median.total, split)
        } catch {
            log("agent: split inference failed (\(error)); latency measured on the device")
            return onDevice()
        }
    }

    /// The model package for a job: the local override, else the cached download (see `PackageCache`).
    func modelFile(_ id: UUID) throws -> String {
        if let local = configuration.modelPath { return local }
        return try PackageCache(directory: configuration.cacheDirectory, client: client).file(for: id)
    }

    /// The job's model as an elastic network composed with the job's planned variants (all originals when the
    /// coordinator planned none); the package is verified (archive, SHA-256, tensors) on every load.
    func network(for document: JobDocument) throws -> ElasticNetwork {
        let net = try ElasticPackage.loadNetwork(path: try modelFile(document.modelID))
        try net.compose(ids: document.variants.isEmpty ? net.positions.map { $0.variants[0].id } : document.variants)
        return net
    }

    /// Measures every variant of every block at batch 1 on this device (median of 20 after 5 warm-up runs), on
    /// the features the original blocks hand on, so the planner can plan from this device's own figures.
    func profile(_ job: LeasedJob) throws -> JobResult {
        let net = try ElasticPackage.loadNetwork(path: try modelFile(job.document.modelID))
        var x = net.model.stem.forward(Tensor(zeros: [1] + net.model.inputShape), training: false)
        var latencies: [[Double]] = []
        for blocks in net.variantBlocks {
            latencies.append(blocks.map { block in
                max(Profiler.medianMs(runs: 20, warmup: 5) { _ = block.forward(x, training: false) } * configuration.slowdown, 1e-6)
            })
            x = blocks[0].forward(x, training: false)
        }
        return JobResult(attempt: job.attempt, outcome: .succeeded, variantLatenciesMs: latencies)
    }
}

/// A value shared between the agent's threads.
final class Shared<Value: Sendable>: Sendable {
    private let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
    var value: Value { state.withLock { $0 } }
    func set(_ value: Value) { state.withLock { $0 = value } }
}
