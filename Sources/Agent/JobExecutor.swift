import ElasticModel
import FleetAPI
import Foundation
import Learning

/// One kind of job (`AdaptJob`, `ApplyJob`, `ProfileJob`, `RestoreJob`): runs a leased job on the device's data and returns what
/// to deliver. It publishes its progress as it goes (`JobLoop` sends the latest in every heartbeat), and never
/// talks to the coordinator about the job itself: saving, uploading and reporting are the loop's.
protocol JobExecutor: Sendable {
    /// - Throws: when the job cannot run (no package, a corrupt download); the loop reports that as a failure.
    func run(_ job: LeasedJob, data: LabeledImages, progress: JobProgress) throws -> JobOutcome
}

/// What a job produced: the result, the artifact to upload before it (adapt), and what the job measured that the
/// device's context should know (the loop decides whether to report it).
struct JobOutcome: Sendable {
    var result: JobResult
    var artifact: Data?
    /// The edge round trip (ms) the split latency measurement observed beyond the planner's edge compute.
    var observedEdgeRoundTripMs: Double?
    /// What adaptation left in the network (adapters, batch norms) and its combination, for the inference service.
    var adapted: (variants: [String], tensors: [String: SafeTensor])?
    /// `model.onnx` of what the job left, for a job whose result must be accepted before the device runs it
    /// (`installsWhenAccepted`); a job installed as it ran wrote the file itself.
    var modelFile: CurrentModelFile.Rendered?
    /// Whether the device may run what the job left only once the coordinator accepted the result: an `adapt`
    /// result passes its campaign's quality gate there, and a rejected (or fenced) one must leave the device on
    /// its previous adapters. `apply` and `restore` install what the coordinator chose, so they install at once.
    var installsWhenAccepted: Bool

    init(result: JobResult, artifact: Data? = nil, observedEdgeRoundTripMs: Double? = nil,
         adapted: (variants: [String], tensors: [String: SafeTensor])? = nil,
         modelFile: CurrentModelFile.Rendered? = nil, installsWhenAccepted: Bool = false) {
        self.result = result
        self.artifact = artifact
        self.observedEdgeRoundTripMs = observedEdgeRoundTripMs
        self.adapted = adapted
        self.modelFile = modelFile
        self.installsWhenAccepted = installsWhenAccepted
    }

    static func failed(_ job: LeasedJob, _ error: String) -> JobOutcome {
        JobOutcome(result: JobResult(attempt: job.attempt, outcome: .failed, error: error))
    }
}

/// A running job's numeric progress, read by the heartbeat thread while the job writes it.
final class JobProgress: Sendable {
    private let values = Shared<[String: Double]>([:])
    init() {}
    /// The latest figures (empty before the job published any).
    var snapshot: [String: Double] { values.value }
    /// Sets the given figures, keeping the others. A figure that is not finite is left out: the coordinator refuses
    /// a heartbeat that carries one, and a refused heartbeat does not renew the lease.
    func update(_ figures: [String: Double]) { values.update { $0.merge(figures.filter { $0.value.isFinite }) { $1 } } }
}

/// What every job needs from the agent: its configuration, the coordinator, the models, the latency meter, the log,
/// and what the device serves now.
struct JobEnvironment: Sendable {
    let configuration: AgentConfiguration
    let client: any AgentCoordinator
    let latency: LatencyMeter
    let log: @Sendable (String) -> Void
    /// The network the inference service serves now (`--serve`), nil without one or before its first build.
    var served: @Sendable () -> ServedNetwork? = { nil }
    /// The device's local images read through another package's input pipeline (a release compares two models'
    /// served entropy on the same images); nil: only the job's own data is available.
    var localImages: (@Sendable (PackageInput) throws -> LabeledImages)?

    /// The model package for a job: the local override, else the cached download.
    func modelFile(_ id: UUID) throws -> String {
        if let local = configuration.modelPath { return local }
        return try client.packageFile(for: id, cacheDirectory: configuration.cacheDirectory)
    }

    /// The job's model as an elastic network composed with the job's planned variants (all originals when the
    /// coordinator planned none); the package is verified (archive, SHA-256, tensors) on every load.
    func network(for document: JobDocument) throws -> ElasticNetwork { try package(for: document).network }

    /// The composed network with its package's manifest (what `CurrentModelFile` writes into the exported model).
    func package(for document: JobDocument) throws -> (network: ElasticNetwork, manifest: PackageManifest) {
        let package = try ElasticPackage.read(path: try modelFile(document.modelID))
        let net = try package.network()
        try net.compose(ids: document.variants.isEmpty ? net.positions.map { $0.variants[0].id } : document.variants)
        return (net, package.manifest)
    }

    /// Stretches work that started at `start` to `slowdown` times its duration (simulated slower hardware).
    func slowDown(since start: Date) {
        guard configuration.slowdown > 1 else { return }
        Thread.sleep(forTimeInterval: Date().timeIntervalSince(start) * (configuration.slowdown - 1))
    }

    /// Energy of work that took `seconds` (energy ≈ time × power), in mJ.
    func energyMJ(_ seconds: Double) -> Double { seconds * 1000 * configuration.powerWatts }

    /// What adaptation changes: the position adapters (shared by every variant, so they adapt any combination), and
    /// the batch-norm affine parameters and running statistics of the blocks this device runs (without the
    /// statistics, the affine parameters would meet source statistics).
    static func adaptedTensors(_ model: Model) -> [String: SafeTensor] {
        let running = Set(model.allNorms.map(\.name))
        return model.namedTensors().filter { name, _ in
            name.contains(".adapter.") || running.contains { name.hasPrefix($0 + ".") && !name.dropFirst($0.count + 1).contains(".") }
        }
    }
}
