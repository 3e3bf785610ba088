import ElasticModel
import FleetAPI
import Foundation
import Learning

/// Measures every variant of every block at batch 1 on this device (median of 20 after 5 warm-up runs), on the
/// features the original blocks hand on, so the planner can plan from this device's own figures.
///
/// A release's `profile` job (the coordinator answers the plan request) then measures what the release would
/// serve: it asks which combination those figures plan the device to (`POST /v1/agent/jobs/{id}/plan`), and
/// reports that combination's mean served entropy on the device's images against what the device serves now
/// (`entropy_after` / `entropy_before`) and its batch-1 latency (`latency_ms`), which the release gate judges.
///
/// Progress: `positions_done` of `total_positions`.
struct ProfileJob: JobExecutor {
    let environment: JobEnvironment

    func run(_ job: LeasedJob, data: LabeledImages, progress: JobProgress) throws -> JobOutcome {
        let net = try ElasticPackage.loadNetwork(path: try environment.modelFile(job.document.modelID))
        let slowdown = environment.configuration.slowdown
        let positions = net.variantBlocks.count
        progress.update(["positions_done": 0, "total_positions": Double(positions)])
        var x = net.model.stem.forward(Tensor(zeros: [1] + net.model.inputShape), training: false)
        var latencies: [[Double]] = []
        for blocks in net.variantBlocks {
            latencies.append(blocks.map { block in
                max(Profiler.medianMs(runs: 20, warmup: 5) { _ = block.forward(x, training: false) } * slowdown, 1e-6)
            })
            x = blocks[0].forward(x, training: false)
            progress.update(["positions_done": Double(latencies.count)])
        }
        var result = JobResult(attempt: job.attempt, outcome: .succeeded, variantLatenciesMs: latencies)
        switch try environment.client.releasePlan(job: job.id, attempt: job.attempt, variantLatenciesMs: latencies, attempts: 8) {
        case .notARelease:
            break
        case .refused(let status, let body):
            return .failed(job, "the coordinator did not plan the release for this device (HTTP \(status)): \(body)")
        case .decision(let decision):
            result.metrics = try releaseMetrics(decision, job: job, data: data)
        }
        return JobOutcome(result: result)
    }

    /// The release's combination on the device's images: its mean served entropy (the inference service's graph, on
    /// at most 256 images, as the drift baseline) against the network the device serves now, and its batch-1 latency
    /// on the device. A combination the release splits with an edge server reports no latency here: the gate judges
    /// the measured variants then. A device that serves nothing yet reports no `entropy_before`.
    func releaseMetrics(_ decision: PlanDecision, job: LeasedJob, data: LabeledImages) throws -> JobMetrics {
        var document = job.document
        document.variants = decision.variants.map(\.variant)
        let path = try environment.modelFile(document.modelID)
        let candidate = try InferenceService.build(package: path, modelID: document.modelID, variants: document.variants, configVersion: nil,
                                                   partition: nil, tensors: [:], generation: 0, edge: nil, log: environment.log)
        let after = InferenceService.baseline(candidate, data)
        let before = try servedNow().flatMap { network -> DriftWindow.Baseline? in
            guard let images = try imagesFor(network, job: data) else { return nil }
            return InferenceService.baseline(network, images)
        }
        var metrics = JobMetrics(entropyBefore: before?.entropy, entropyAfter: after.entropy, samples: after.samples)
        if decision.partition == nil { metrics.latencyMs = environment.latency.onDeviceMs(try environment.network(for: document), data: data) }
        environment.log(String(format: "agent: release combination [%@]: served entropy %@ → %.4f on %d local images%@",
                               document.variants.joined(separator: ", "), before.map { String(format: "%.4f", $0.entropy) } ?? "none",
                               after.entropy, after.samples, metrics.latencyMs.map { String(format: ", latency %.2f ms", $0) } ?? ""))
        return metrics
    }

    /// What the device serves now: the inference service's network, else the network of its current config (the
    /// package's combination, without adapters); nil when it has neither.
    func servedNow() throws -> ServedNetwork? {
        if let served = environment.served() { return served }
        guard case .config(let view) = try environment.client.config(attempts: 3) else { return nil }
        return try InferenceService.build(package: try environment.modelFile(view.decision.modelID), modelID: view.decision.modelID,
                                          variants: view.decision.variants.map(\.variant), configVersion: view.version, partition: nil,
                                          tensors: [:], generation: 0, edge: nil, log: environment.log)
    }

    /// The local images as `network`'s package reads them (its own resize, crop and channels); the job's data when
    /// the pipelines agree or no reader is available and the shapes match; nil when they cannot be compared.
    func imagesFor(_ network: ServedNetwork, job data: LabeledImages) throws -> LabeledImages? {
        if let read = environment.localImages { return try read(network.input) }
        return network.inputShape == [data.channels, data.height, data.width] ? data : nil
    }
}
