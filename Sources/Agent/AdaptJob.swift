import ElasticModel
import FleetAPI
import Foundation
import Learning

/// Trains the block adapters (and batch-norm affine parameters) on the local images with the requested unsupervised
/// loss, and measures entropy (and accuracy, when labels exist) before and after, and the combination's latency.
/// Labelled data of at least 64 images is split (`HeldOutSplit`): the adapters train on three quarters, and accuracy
/// on the held-out quarter before and after is what the coordinator's quality gate judges.
/// The trained tensors are the artifact (the loop uploads them before the result); the device runs them only after
/// the coordinator accepted the result (`JobOutcome.installsWhenAccepted`).
///
/// Progress: `step` (gradient steps done) of `total_steps`, from the first step on, and `entropy_before`.
struct AdaptJob: JobExecutor {
    let environment: JobEnvironment

    func run(_ job: LeasedJob, data: LabeledImages, progress: JobProgress) throws -> JobOutcome {
        let document = job.document
        guard let loss = AdaptationLoss(rawValue: document.loss.rawValue) else {
            return .failed(job, "unknown loss \(document.loss.rawValue)")
        }
        progress.update(["step": 0, "total_steps": Double(document.steps)])
        let (net, manifest) = try environment.package(for: document)
        let model = net.model
        let (entropyBefore, diversityBefore) = Self.entropyAndDiversity(model, data)
        let accuracyBefore = data.labels == nil ? nil : Trainer.accuracy(model, data)
        let split = HeldOutSplit(data)
        let heldOutBefore = split.heldOut.map { Trainer.accuracy(model, $0) }
        progress.update(["entropy_before": entropyBefore])
        let unlabeled = split.training
        let start = Date()
        // Each step is slowed down as it ends (the next one starts), so progress advances at the simulated pace.
        var stepStart = start
        let report = Adaptation.adapt(model, on: unlabeled, loss: loss, steps: document.steps, batchSize: min(document.batchSize, unlabeled.count),
                                      learningRate: Float(document.learningRate), trainable: .adaptersAndNorms, seed: UInt64(job.attempt),
                                      beforeStep: { step in
                                          guard step > 0 else { return }
                                          environment.slowDown(since: stepStart)
                                          progress.update(["step": Double(step)])
                                          stepStart = Date()
                                      })
        environment.slowDown(since: stepStart)
        let seconds = Date().timeIntervalSince(start)
        progress.update(["step": Double(report.steps)])
        let (entropyAfter, diversityAfter) = Self.entropyAndDiversity(model, data)
        let accuracyAfter = data.labels == nil ? nil : Trainer.accuracy(model, data)
        let heldOutAfter = split.heldOut.map { Trainer.accuracy(model, $0) }
        // Inference latency of the planned combination with its adapters at batch 1 (split with the edge server
        // when the config says so): the figure the planner predicted.
        let latency = environment.latency.measure(net, data: data, modelID: document.modelID)
        // Written (and served) only once the coordinator accepts the result: it may fail the campaign's gate.
        let modelFile = CurrentModelFile.render(net, manifest: manifest, environment: environment)
        let adapted = JobEnvironment.adaptedTensors(model)
        let artifact = Data(SafeTensors.encode(adapted,
                                               metadata: ["loss": loss.rawValue, "samples": String(report.samplesUsed)]))
        let result = JobResult(attempt: job.attempt, outcome: .succeeded, metrics: JobMetrics(
            entropyBefore: entropyBefore, entropyAfter: entropyAfter, accuracyBefore: accuracyBefore, accuracyAfter: accuracyAfter,
            trainSeconds: seconds, energyMJ: environment.energyMJ(seconds), samples: data.count, steps: report.steps,
            latencyMs: latency.ms, splitAfterBlock: latency.splitAfterBlock, diversityBefore: diversityBefore, diversityAfter: diversityAfter,
            heldoutAccuracyBefore: heldOutBefore, heldoutAccuracyAfter: heldOutAfter, heldoutSamples: split.heldOut?.count))
        return JobOutcome(result: result, artifact: artifact, observedEdgeRoundTripMs: latency.observedEdgeRoundTripMs,
                          adapted: (net.choiceIDs, adapted), modelFile: modelFile, installsWhenAccepted: true)
    }

    /// Mean per-sample prediction entropy (as `Trainer.meanEntropy`) and prediction diversity, the entropy of the
    /// batch-mean prediction, from one pass over the data. Diversity collapses towards 0 when every image is
    /// predicted as one class, which per-sample entropy rewards (the coordinator's quality gate checks both).
    static func entropyAndDiversity(_ model: Model, _ data: LabeledImages) -> (entropy: Double, diversity: Double) {
        let l = Trainer.logits(model, data)
        let n = l.shape[0], k = l.shape[1]
        let p = Losses.softmax(l)   // (N, K)
        let h = Losses.entropies(p, n: n, k: k)
        var mean = [Double](repeating: 0, count: k)
        for i in 0..<n { for j in 0..<k { mean[j] += Double(p[i * k + j]) } }
        let diversity = mean.reduce(0.0) { acc, sum in
            let q = sum / Double(max(1, n))
            return q > 0 ? acc - q * Foundation.log(q) : acc
        }
        return (Double(h.reduce(0, +)) / Double(max(1, h.count)), diversity)
    }
}
