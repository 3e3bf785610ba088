import Foundation
import Synchronization

/// The drift watch: a sliding window of the entropy and confidence of what the device served (and of newly spooled
/// frames), compared with the baseline measured on the local data right after the last adaptation. A shifted
/// stream raises the window's entropy and lowers its confidence against that baseline.
final class DriftWindow: Sendable {
    struct Baseline: Sendable, Equatable {
        var entropy: Double
        var confidence: Double
        var samples: Int
    }

    struct Snapshot: Sendable, Equatable, Encodable {
        var windowSize: Int
        var capacity: Int
        var windowEntropy: Double?
        var windowConfidence: Double?
        var baselineEntropy: Double?
        var baselineConfidence: Double?
        var baselineSamples: Int?
        /// Window entropy minus the baseline's (nats); nil before both exist.
        var entropyRise: Double?
        /// Baseline confidence minus the window's.
        var confidenceDrop: Double?

        enum CodingKeys: String, CodingKey {
            case windowSize = "window_size"
            case capacity
            case windowEntropy = "window_entropy"
            case windowConfidence = "window_confidence"
            case baselineEntropy = "baseline_entropy"
            case baselineConfidence = "baseline_confidence"
            case baselineSamples = "baseline_samples"
            case entropyRise = "entropy_rise"
            case confidenceDrop = "confidence_drop"
        }
    }

    private struct State {
        var entropies: [Double] = []
        var confidences: [Double] = []
        var next = 0
        var baseline: Baseline?
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = max(1, capacity) }

    func record(entropy: Double, confidence: Double) {
        guard entropy.isFinite, confidence.isFinite else { return }
        let capacity = capacity
        state.withLock { s in
            if s.entropies.count < capacity {
                s.entropies.append(entropy)
                s.confidences.append(confidence)
            } else {
                s.entropies[s.next] = entropy
                s.confidences[s.next] = confidence
            }
            s.next = (s.next + 1) % capacity
        }
    }

    /// A new baseline (after an adaptation); the window starts again, so it compares the adapted network only.
    func setBaseline(_ baseline: Baseline) {
        state.withLock { s in
            s = State()
            s.baseline = baseline
        }
    }

    /// A baseline when there is none yet (the agent's start-up one, `DriftReporter`); the window is kept. Returns
    /// whether it was set (an adaptation's baseline is never replaced by it).
    func setBaselineIfMissing(_ baseline: Baseline) -> Bool {
        state.withLock { s in
            guard s.baseline == nil else { return false }
            s.baseline = baseline
            return true
        }
    }

    var snapshot: Snapshot {
        let capacity = capacity
        return state.withLock { s in
            let n = s.entropies.count
            let we = n == 0 ? nil : s.entropies.reduce(0, +) / Double(n)
            let wc = n == 0 ? nil : s.confidences.reduce(0, +) / Double(n)
            let b = s.baseline
            return Snapshot(windowSize: n, capacity: capacity, windowEntropy: we, windowConfidence: wc, baselineEntropy: b?.entropy,
                            baselineConfidence: b?.confidence, baselineSamples: b?.samples,
                            entropyRise: we.flatMap { w in b.map { w - $0.entropy } },
                            confidenceDrop: wc.flatMap { w in b.map { $0.confidence - w } })
        }
    }
}

/// The inference service's counters, rendered as Prometheus text (`GET /metrics` on the agent). Self-contained on
/// purpose (no metrics library), so that it merges with whatever exposition the coordinator adopts.
final class ServingMetrics: Sendable {
    /// Upper bounds (seconds) of the request latency histogram.
    static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    private struct State {
        var requests: [String: Int] = [:]          // "route|status" → count
        var bucketCounts = [Int](repeating: 0, count: ServingMetrics.buckets.count)
        var latencyCount = 0
        var latencySum = 0.0
        var predictions = 0
        var entropySum = 0.0
        var lastEntropy: Double?
        var swaps = 0
        var edgeRequests = 0
        var edgeFallbacks = 0
        var spooledFrames = 0
        var batches = 0
        var batchedInputs = 0
    }

    private let state = Mutex(State())

    init() {}

    func request(route: String, status: Int, seconds: Double) {
        state.withLock { s in
            s.requests["\(route)|\(status)", default: 0] += 1
            guard route.hasPrefix("/v1/predict") else { return }
            s.latencyCount += 1
            s.latencySum += seconds
            for (i, bound) in Self.buckets.enumerated() where seconds <= bound { s.bucketCounts[i] += 1 }
        }
    }

    func served(entropies: [Double]) {
        state.withLock { s in
            s.predictions += entropies.count
            s.entropySum += entropies.reduce(0, +)
            if let last = entropies.last { s.lastEntropy = last }
        }
    }

    func swapped() { state.withLock { $0.swaps += 1 } }
    func edge(fallback: Bool) { state.withLock { s in s.edgeRequests += 1; if fallback { s.edgeFallbacks += 1 } } }
    func spooled(_ n: Int) { state.withLock { $0.spooledFrames += n } }
    func batched(_ requests: Int) { state.withLock { s in s.batches += 1; s.batchedInputs += requests } }

    var swaps: Int { state.withLock { $0.swaps } }
    var edgeFallbacks: Int { state.withLock { $0.edgeFallbacks } }

    /// Prometheus text exposition format 0.0.4.
    func render(served: ServedNetwork?, drift: DriftWindow.Snapshot) -> String {
        let s = state.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        func number(_ v: Double) -> String { v.isFinite ? String(v) : (v.isNaN ? "NaN" : (v > 0 ? "+Inf" : "-Inf")) }
        family("fleetadapt_agent_requests_total", "counter", "Requests to the inference service by route and status.")
        for key in s.requests.keys.sorted() {
            let parts = key.split(separator: "|", maxSplits: 1)
            out += "fleetadapt_agent_requests_total{route=\"\(parts[0])\",status=\"\(parts[1])\"} \(s.requests[key]!)\n"
        }
        family("fleetadapt_agent_predict_seconds", "histogram", "Wall time of predict requests, from routing to the answer.")
        for (i, bound) in Self.buckets.enumerated() {
            out += "fleetadapt_agent_predict_seconds_bucket{le=\"\(number(bound))\"} \(s.bucketCounts[i])\n"
        }
        out += "fleetadapt_agent_predict_seconds_bucket{le=\"+Inf\"} \(s.latencyCount)\n"
        out += "fleetadapt_agent_predict_seconds_sum \(number(s.latencySum))\nfleetadapt_agent_predict_seconds_count \(s.latencyCount)\n"
        family("fleetadapt_agent_predictions_total", "counter", "Inputs classified (a batch counts each of its inputs).")
        out += "fleetadapt_agent_predictions_total \(s.predictions)\n"
        family("fleetadapt_agent_served_entropy_nats_sum", "counter", "Sum of the entropy (nats) of every served prediction.")
        out += "fleetadapt_agent_served_entropy_nats_sum \(number(s.entropySum))\n"
        family("fleetadapt_agent_model_swaps_total", "counter", "Served networks replaced (config or adapter change).")
        out += "fleetadapt_agent_model_swaps_total \(s.swaps)\n"
        family("fleetadapt_agent_edge_requests_total", "counter", "Predictions that sent the cut features to the edge server.")
        out += "fleetadapt_agent_edge_requests_total \(s.edgeRequests)\n"
        family("fleetadapt_agent_edge_fallbacks_total", "counter", "Split predictions answered by the whole network on the device (edge late or failed).")
        out += "fleetadapt_agent_edge_fallbacks_total \(s.edgeFallbacks)\n"
        family("fleetadapt_agent_spooled_frames_total", "counter", "New spool frames classified into the drift window.")
        out += "fleetadapt_agent_spooled_frames_total \(s.spooledFrames)\n"
        family("fleetadapt_agent_microbatches_total", "counter", "Forwards run by the micro-batcher (--serve-batch-window-ms > 0).")
        out += "fleetadapt_agent_microbatches_total \(s.batches)\n"
        family("fleetadapt_agent_microbatched_requests_total", "counter", "Requests those forwards answered (divided by the batches: mean batch size).")
        out += "fleetadapt_agent_microbatched_requests_total \(s.batchedInputs)\n"
        family("fleetadapt_agent_served_generation", "gauge", "Generation of the served network (0: none yet).")
        out += "fleetadapt_agent_served_generation \(served?.generation ?? 0)\n"
        if let v = served?.configVersion {
            family("fleetadapt_agent_served_config_version", "gauge", "Coordinator config version of the served network.")
            out += "fleetadapt_agent_served_config_version \(v)\n"
        }
        family("fleetadapt_agent_drift_window_size", "gauge", "Predictions in the drift window.")
        out += "fleetadapt_agent_drift_window_size \(drift.windowSize)\n"
        let gauges: [(String, Double?, String)] = [
            ("fleetadapt_agent_drift_window_entropy", drift.windowEntropy, "Mean entropy (nats) over the drift window."),
            ("fleetadapt_agent_drift_window_confidence", drift.windowConfidence, "Mean top-1 probability over the drift window."),
            ("fleetadapt_agent_drift_baseline_entropy", drift.baselineEntropy, "Mean entropy on the local data right after the last adaptation."),
            ("fleetadapt_agent_drift_baseline_confidence", drift.baselineConfidence, "Mean top-1 probability on the local data right after the last adaptation."),
            ("fleetadapt_agent_drift_entropy_rise", drift.entropyRise, "Window entropy minus the baseline's."),
            ("fleetadapt_agent_drift_confidence_drop", drift.confidenceDrop, "Baseline confidence minus the window's."),
        ]
        for (name, value, help) in gauges {
            guard let value else { continue }
            family(name, "gauge", help)
            out += "\(name) \(number(value))\n"
        }
        return out
    }
}
