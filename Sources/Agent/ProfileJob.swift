import ElasticModel
import FleetAPI
import Foundation
import Learning

/// Measures every variant of every block at batch 1 on this device (median of 20 after 5 warm-up runs), on the
/// features the original blocks hand on, so the planner can plan from this device's own figures.
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
        return JobOutcome(result: JobResult(attempt: job.attempt, outcome: .succeeded, variantLatenciesMs: latencies))
    }
}
