import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning

/// Installs the domain's aggregated adapters (trained by other devices) without training, re-estimates the
/// batch-norm statistics of its combination on the local images (forward passes only: affordable where training
/// is not, and most of the gain on a corruption shift — `fleetadapt bench adapt`), and measures what that changes
/// on this device's data.
struct ApplyJob: JobExecutor {
    let environment: JobEnvironment

    func run(_ job: LeasedJob, data: LabeledImages, progress: JobProgress) throws -> JobOutcome {
        let aggregate: Data
        switch try environment.client.domainAdapter(job.document.domainID, attempts: 8) {
        case .adapter(let body):
            aggregate = body
        case .missing(let status):
            return .failed(job, "no aggregated adapter for the domain yet (HTTP \(status))")
        case .corrupt:
            return .failed(job, "aggregated adapter download is corrupt")
        }
        let (net, manifest) = try environment.package(for: job.document)
        let model = net.model
        let entropyBefore = Trainer.meanEntropy(model, data)
        let accuracyBefore = data.labels == nil ? nil : Trainer.accuracy(model, data)
        let start = Date()
        try install(aggregate, into: net)
        let passes = Self.reestimateNorms(model, on: data, batchSize: job.document.batchSize)
        environment.slowDown(since: start)
        let seconds = Date().timeIntervalSince(start)
        environment.log("agent: applied the aggregated adapters and re-estimated batch-norm statistics in \(passes) forward passes")
        CurrentModelFile.write(net, manifest: manifest, environment: environment)
        let latency = environment.latency.measure(net, data: data, modelID: job.document.modelID)
        let result = JobResult(attempt: job.attempt, outcome: .succeeded, metrics: JobMetrics(
            entropyBefore: entropyBefore, entropyAfter: Trainer.meanEntropy(model, data), accuracyBefore: accuracyBefore,
            accuracyAfter: data.labels == nil ? nil : Trainer.accuracy(model, data), trainSeconds: seconds,
            energyMJ: environment.energyMJ(seconds), samples: data.count, steps: 0,
            latencyMs: latency.ms, splitAfterBlock: latency.splitAfterBlock))
        return JobOutcome(result: result, observedEdgeRoundTripMs: latency.observedEdgeRoundTripMs,
                          adapted: (net.choiceIDs, JobEnvironment.adaptedTensors(model)))
    }

    /// Re-estimates the batch-norm statistics of `model`'s combination on the local images, labels unused (forward
    /// passes only). Returns the passes made.
    static func reestimateNorms(_ model: Model, on data: LabeledImages, batchSize: Int) -> Int {
        var unlabeled = data
        unlabeled.labels = nil
        let batch = max(1, min(batchSize, data.count))
        return Adaptation.adapt(model, on: unlabeled, loss: .bnStats, steps: (data.count + batch - 1) / batch, batchSize: batch).steps
    }

    /// Installs only adaptation's tensors: the adapters and this combination's batch norms (the aggregate also holds
    /// other combinations' norms, which are skipped). Anything else — a frozen weight, a shape that differs from the
    /// package's, a value that is not finite — refuses the whole aggregate before anything is installed.
    func install(_ aggregate: Data, into net: ElasticNetwork) throws {
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
        for (name, values) in install { try net.model.store.set(name, values) }
    }
}
