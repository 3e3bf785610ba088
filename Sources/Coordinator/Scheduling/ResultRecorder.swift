import FleetAPI
import Foundation
import PostgresClient

/// What follows a recorded job result: the device's metric series, and for `profile` jobs the measured
/// latencies the planner prefers over scaled reference figures.
struct ResultRecorder: Sendable {
    let pool: PostgresPool
    let metrics: MetricsStore

    func recorded(job: UUID, device: UUID, result: JobResult, state: JobState, now: Date) throws {
        guard let row = try pool.query("SELECT kind, document::text AS document FROM jobs WHERE id = \(job)").rows.first else { return }
        let kind = try row.decode("kind", as: String.self)
        let document = try JSON.decode(JobDocument.self, from: try row.decode("document", as: String.self))
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
        try pool.withTransaction { c in
            try metrics.record(device: device, kind: "job.\(kind)", job: job, values: values, now: now, on: c)
            if kind == JobKind.profile.rawValue, result.outcome == .succeeded, let latencies = result.variantLatenciesMs {
                try c.query("""
                    INSERT INTO device_variant_latencies (device_id, model_id, latencies, measured_at)
                    VALUES (\(device), \(document.modelID), \(try JSON.string(latencies))::jsonb, \(now))
                    ON CONFLICT (device_id, model_id) DO UPDATE SET latencies = EXCLUDED.latencies, measured_at = EXCLUDED.measured_at
                    """)
            }
        }
    }
}
