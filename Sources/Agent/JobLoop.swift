import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning

/// The device agent's loop: report context, long-poll for a job, run it (one at a time), heartbeat while it runs
/// (with the job's live progress), save the result, upload what it produced and report the result. On stop it
/// finishes the job in hand and returns; a job it abandons is requeued by the coordinator when its lease expires.
///
/// It never gives up on an unreachable coordinator: the start-up context report, the poll and the delivery are
/// retried until answered (capped backoff, a log line per failure), and a finished result waits on disk
/// (`PendingResults`) until the coordinator has it, across restarts: saved results go first at the next start.
final class JobLoop: Sendable {
    let configuration: AgentConfiguration
    let client: any AgentCoordinator
    let log: @Sendable (String) -> Void
    let latency: LatencyMeter
    private let stopFlag = Shared(false)
    /// The round trip to the edge server as last measured here (ms): at start an empty request, after a split
    /// measurement what an inference request really cost beyond the planner's edge compute. Reported with the
    /// context on top of the declared link, so the planner plans from it.
    let edgeRoundTripMs = Shared<Double?>(nil)
    /// The device's inference service, told of every adaptation so it serves the adapted network (nil: not serving).
    let serving: InferenceService?
    /// The local data: `data.safetensors` or a folder of images (a spool with `watch`).
    let local: LocalImages

    init(configuration: AgentConfiguration, client: any AgentCoordinator, serving: InferenceService? = nil,
         log: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.client = client
        self.log = log
        self.serving = serving
        latency = LatencyMeter(configuration: configuration, client: client, log: log)
        local = LocalImages(directory: configuration.dataDirectory, window: configuration.imageWindow, watch: configuration.watch, log: log)
    }

    func stop() { stopFlag.set(true) }
    var stopped: Bool { stopFlag.value }

    /// Runs until stopped (or `maxJobs` done). Returns the number of jobs completed (run and delivered).
    func run() throws -> Int {
        if local.isSafeTensors {
            let (data, metadata) = try LocalDataset.read(directory: configuration.dataDirectory)
            log("agent: \(data.count) local images (\(metadata["corruption"] ?? "clean")), labels \(data.labels == nil ? "absent" : "present, for reporting only")")
        } else {
            log("agent: local images from the folder \(configuration.dataDirectory) (JPEG/PNG, newest \(configuration.imageWindow)\(configuration.watch ? ", watched for new frames" : ""))")
        }
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
                    try runJob(job, pending: pending)
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

    /// The executor of a kind of job.
    func executor(for kind: JobKind) -> any JobExecutor {
        let environment = executorEnvironment
        switch kind {
        case .adapt: return AdaptJob(environment: environment)
        case .apply: return ApplyJob(environment: environment)
        case .profile: return ProfileJob(environment: environment)
        case .restore: return RestoreJob(environment: environment)
        }
    }

    /// What the device reports about itself: the declared context, its free memory, and the declared link's round
    /// trip plus the one measured here to the edge server (the first report measures it; an unreachable edge
    /// server leaves the declared figure).
    func context() -> DeviceContext {
        var context = configuration.context
        context.freeMemoryMB = context.freeMemoryMB ?? DeviceFacts.freeMemoryMB()
        if configuration.edgeURL != nil {
            if edgeRoundTripMs.value == nil, let measured = latency.edgeRoundTripMs() {
                edgeRoundTripMs.set(measured)
            }
            if let measured = edgeRoundTripMs.value {
                context.rttMs = (context.rttMs ?? 0) + measured
                log(String(format: "agent: round trip to the edge server %.2f ms; reporting rtt %.2f ms", measured, context.rttMs!))
            }
        }
        return context
    }

    /// - Parameter persistent: retry until the coordinator answers (at start), rather than a few times (mid-job).
    func reportContext(persistent: Bool = false) throws {
        try client.reportContext(context(), retry: persistent ? persistently : .attempts(8))
    }

    /// A job measured the edge round trip: when it is clearly more than reported, report it (the coordinator
    /// re-plans from it). A failed report is logged; the job goes on.
    func noteObservedEdgeRoundTrip(_ observed: Double) {
        guard let reported = edgeRoundTripMs.value, observed > reported * 1.2 + 0.05 else { return }
        edgeRoundTripMs.set(observed)
        do {
            try reportContext()
        } catch {
            log("agent: could not report the measured round trip: \(error)")
        }
    }

    /// Runs one job with heartbeats beside it. The finished result is saved to `pending` first, then delivered
    /// (heartbeats go on meanwhile, so an outage shorter than the lease keeps the attempt). A lease lost meanwhile
    /// drops the result.
    /// Runs one job on the local data as it is now (an image folder is read through the job's package's input pipeline).
    func runJob(_ job: LeasedJob, pending: PendingResults) throws {
        let data: LabeledImages
        do {
            let manifest = try ElasticPackage.read(path: try executorEnvironment.modelFile(job.document.modelID)).manifest
            let (images, description) = try local.images(for: try PackageInput(manifest: manifest))
            data = images
            if !local.isSafeTensors {
                log("agent: \(images.count) local images (\(description)), labels \(images.labels == nil ? "absent" : "present, for reporting only")")
            }
        } catch {
            let entry = try pending.save(job: job.id, result: JobOutcome.failed(job, "local data: \(error)").result, artifact: nil)
            try deliver(entry, store: pending)
            return
        }
        guard data.count > 0 else {
            let entry = try pending.save(job: job.id, result: JobOutcome.failed(job, "no usable local images in \(configuration.dataDirectory)").result, artifact: nil)
            try deliver(entry, store: pending)
            return
        }
        try runJob(job, data: data, pending: pending)
    }

    var executorEnvironment: JobEnvironment {
        JobEnvironment(configuration: configuration, client: client, latency: latency, log: log, served: { [serving] in serving?.served },
                       localImages: { [local] input in try local.images(for: input).data })
    }

    func runJob(_ job: LeasedJob, data: LabeledImages, pending: PendingResults) throws {
        log("agent: job \(job.id.uuidString.lowercased()) (\(job.document.kind.rawValue), attempt \(job.attempt), \(job.document.loss.rawValue), \(job.document.steps) steps)")
        let progress = JobProgress()
        let heartbeats = HeartbeatThread(interval: configuration.heartbeatInterval) { [client] in
            try? client.heartbeat(job: job.id, attempt: job.attempt, progress: progress.snapshot, attempts: 2)
        }
        defer { heartbeats.stop() }
        let outcome: JobOutcome
        do {
            outcome = try executor(for: job.document.kind).run(job, data: data, progress: progress)
        } catch {
            outcome = .failed(job, "\(error)")
        }
        if let observed = outcome.observedEdgeRoundTripMs { noteObservedEdgeRoundTrip(observed) }
        if !outcome.installsWhenAccepted { install(outcome, of: job, data: data) }
        if heartbeats.leaseLost.value {
            heartbeats.stop()
            log("agent: lease of job \(job.id.uuidString.lowercased()) was lost; its result is dropped")
            return
        }
        let saved: PendingResults.Entry?
        do {
            saved = try pending.save(job: job.id, result: outcome.result, artifact: outcome.artifact)
        } catch {
            log("agent: could not save the result of job \(job.id.uuidString.lowercased()) to \(pending.directory) (\(error)); delivering it from memory")
            saved = nil
        }
        let state: JobState?
        if let saved {
            state = try deliver(saved, store: pending)
        } else {
            state = try deliver(PendingResults.Entry(jobID: job.id, result: outcome.result, hasArtifact: outcome.artifact != nil), store: nil,
                                artifact: outcome.artifact)
        }
        guard outcome.installsWhenAccepted, outcome.result.outcome == .succeeded else { return }
        if state == .succeeded {
            install(outcome, of: job, data: data)
        } else {
            log("agent: job \(job.id.uuidString.lowercased()) ended \(state?.rawValue ?? "unrecorded"): its adapters are not installed; the device keeps what it ran")
        }
    }

    /// Makes what a succeeded job left the device's current model: `model.onnx` (when the job left it to the loop)
    /// and the inference service's network.
    func install(_ outcome: JobOutcome, of job: LeasedJob, data: LabeledImages) {
        guard outcome.result.outcome == .succeeded else { return }
        if let file = outcome.modelFile { CurrentModelFile.write(file, environment: executorEnvironment) }
        if let serving, let adapted = outcome.adapted {
            serving.adapted(modelID: job.document.modelID, variants: adapted.variants, tensors: adapted.tensors, data: data)
        }
    }

    /// Delivers a finished result: the artifact (if any), then the result, each retried until the coordinator
    /// answers. Any answer ends it (the entry is removed): a refused artifact turns the result into a failure that
    /// says why; 404/409 mean this attempt no longer holds the job, so its result is dropped.
    /// Returns the job's state the coordinator recorded, nil when the result was dropped or not recorded.
    @discardableResult
    func deliver(_ entry: PendingResults.Entry, store: PendingResults?, artifact inMemory: Data? = nil) throws -> JobState? {
        var result = entry.result
        if let artifact = inMemory ?? store?.artifact(of: entry), result.outcome == .succeeded {
            switch try client.uploadArtifact(job: entry.jobID, attempt: result.attempt, artifact: artifact, retry: persistently) {
            case .stored:
                break
            case .notHeld(let status):
                log("agent: job \(entry.jobID.uuidString.lowercased()) attempt \(result.attempt) no longer holds the job (artifact: HTTP \(status)); its result is dropped")
                store?.remove(entry)
                return nil
            case .refused(let status, let body):
                result = JobResult(attempt: result.attempt, outcome: .failed,
                                   error: "artifact upload refused: HTTP \(status) \(body)")
            }
        } else if entry.hasArtifact, result.outcome == .succeeded {
            result = JobResult(attempt: result.attempt, outcome: .failed, error: "the saved artifact could not be read")
        }
        let answer = try client.reportResult(job: entry.jobID, result: result, retry: persistently)
        log("agent: job \(entry.jobID.uuidString.lowercased()) \(result.outcome.rawValue) → HTTP \(answer.status)\(answer.state.map { " (\($0.rawValue))" } ?? "")")
        store?.remove(entry)
        return answer.state
    }
}
