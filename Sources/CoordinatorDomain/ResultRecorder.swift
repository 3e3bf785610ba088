import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient

/// What a recorded job result writes beside it: the device's metric series, and for `profile` jobs the measured
/// latencies the planner prefers over scaled reference figures. It runs inside the transaction that records the
/// result (`JobStore.complete`), so each result is recorded exactly once, with its metrics or not at all.
package struct ResultRecorder: Sendable {
    package let metrics: MetricsStore
    package let latencies: VariantLatencyStore
    package let jobs: JobStore

    package init(metrics: MetricsStore, latencies: VariantLatencyStore, jobs: JobStore) {
        self.metrics = metrics
        self.latencies = latencies
        self.jobs = jobs
    }

    package func record(job: UUID, device: UUID, result: JobResult, now: Date, on c: PostgresConnection) throws {
        guard let (kind, document) = try jobs.kindAndDocument(job: job, on: c) else { return }
        var values: [String: Double] = ["succeeded": result.outcome == .succeeded ? 1 : 0, "attempt": Double(result.attempt)]
        if let m = result.metrics {
            values["entropy_before"] = m.entropyBefore
            values["entropy_after"] = m.entropyAfter
            values["accuracy_before"] = m.accuracyBefore
            values["accuracy_after"] = m.accuracyAfter
            values["train_seconds"] = m.trainSeconds
            values["energy_mj"] = m.energyMJ
            values["samples"] = m.samples.map(Double.init)
            values["steps"] = m.steps.map(Double.init)
            values["latency_ms"] = m.latencyMs
            values["split_after_block"] = m.splitAfterBlock.map(Double.init)
        }
        try metrics.record(device: device, kind: "job.\(kind.rawValue)", job: job, values: values, now: now, on: c)
        if kind == .profile, result.outcome == .succeeded, let variantLatencies = result.variantLatenciesMs {
            try latencies.record(device: device, model: document.modelID, latencies: variantLatencies, now: now, on: c)
        }
    }
}
