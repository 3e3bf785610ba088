import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning

/// Puts back what the device ran before a rolled-back campaign or release (`JobDocument.restore`): the restored
/// config's model and combination from the plain package, with exactly the adapters that config runs — downloaded
/// from the job (the device's own earlier artifact or its domain's aggregate) and checked against the digest the
/// job names — or none, which drops the adapters installed. The exported model and the served network follow (the
/// loop hands `adapted` to the inference service), so nothing of the rolled-back adapters stays on the device.
struct RestoreJob: JobExecutor {
    let environment: JobEnvironment

    func run(_ job: LeasedJob, data: LabeledImages, progress: JobProgress) throws -> JobOutcome {
        guard let target = job.document.restore else { return .failed(job, "the restore job names nothing to restore") }
        let (net, manifest) = try environment.package(for: job.document)
        let model = net.model
        let start = Date()
        var installed = "no adapters (the restored config runs none)"
        if let choice = target.adapters {
            guard let pinned = target.sha256 else { return .failed(job, "the restored config's adapters are no longer stored on the coordinator") }
            let body: Data
            switch try environment.client.restoreAdapters(job: job.id, attempts: 8) {
            case .adapter(let b): body = b
            case .missing(let status): return .failed(job, "the restore job's adapters could not be downloaded (HTTP \(status))")
            case .corrupt: return .failed(job, "the restore job's adapter download is corrupt")
            }
            guard CoordinatorClient.sha256Hex(body) == pinned else {
                return .failed(job, "the downloaded adapters differ from the digest the restore job names")
            }
            try ApplyJob(environment: environment).install(body, into: net)
            if choice.source == .aggregated {
                // As when the aggregate was applied first: its batch-norm statistics re-estimated on the local images.
                _ = ApplyJob.reestimateNorms(model, on: data, batchSize: job.document.batchSize)
            }
            installed = "\(choice.source.rawValue) adapters \(pinned.prefix(12))"
        }
        environment.log("agent: restored config version \(target.configVersion): variants \(net.choiceIDs.joined(separator: ",")), \(installed)")
        CurrentModelFile.write(net, manifest: manifest, environment: environment)
        let seconds = Date().timeIntervalSince(start)
        let result = JobResult(attempt: job.attempt, outcome: .succeeded, metrics: JobMetrics(
            entropyAfter: Trainer.meanEntropy(model, data), accuracyAfter: data.labels == nil ? nil : Trainer.accuracy(model, data),
            trainSeconds: seconds, energyMJ: environment.energyMJ(seconds), samples: data.count, steps: 0))
        return JobOutcome(result: result, adapted: (net.choiceIDs, JobEnvironment.adaptedTensors(model)))
    }
}
