import ElasticModel
import FleetAPI
import Foundation
import Learning

/// Measures what an inference costs on this device: the composed network at batch 1, on the device or split with
/// the edge server when the device's config cuts it, and the round trip to the edge server. It only measures: it
/// reads the config, talks to the edge server, and returns figures; what to report is the caller's (`JobLoop`).
struct LatencyMeter: Sendable {
    let configuration: AgentConfiguration
    let client: any AgentCoordinator
    let log: @Sendable (String) -> Void

    struct Measurement: Sendable, Equatable {
        /// Median batch-1 latency (ms), `slowdown` and the declared link included.
        var ms: Double
        /// Set when measured split: the device ran blocks up to this one, the edge server the rest.
        var splitAfterBlock: Int?
        /// For a split measurement: what the edge round trip cost beyond the planner's edge compute (ms), that is
        /// the link's real round trip here.
        var observedEdgeRoundTripMs: Double?
    }

    /// Median wall time (ms) of an empty request to the configured edge server; nil without one or when it
    /// cannot be reached.
    func edgeRoundTripMs() -> Double? {
        configuration.edgeURL.flatMap { EdgeLink(url: $0, token: configuration.token, tls: configuration.tls).roundTripMs() }
    }

    /// Median batch-1 latency (ms) of the composed network on this device alone (median of 20 after 5 warm-up
    /// runs, `slowdown` included).
    func onDeviceMs(_ net: ElasticNetwork, data: LabeledImages) -> Double {
        let model = net.model
        let one = data.tensor([0])
        return Profiler.medianMs(runs: 20, warmup: 5) { _ = model.forward(one, training: false) } * configuration.slowdown
    }

    /// Median batch-1 latency of the composed network. When an edge server is configured and the coordinator's
    /// config for this model and combination cuts the network, it is measured split: the prefix here, the cut
    /// features over the link (its declared bandwidth and round trip simulated on top of the real transfer, as
    /// `slowdown` simulates slower hardware), the suffix on the edge server — after checking that the edge's logits
    /// equal this device's. Anything that stops a split measurement falls back to the device, with a log line.
    func measure(_ net: ElasticNetwork, data: LabeledImages, modelID: UUID) -> Measurement {
        let model = net.model
        let one = data.tensor([0])
        func onDevice() -> Measurement { Measurement(ms: onDeviceMs(net, data: data)) }
        guard let edgeURL = configuration.edgeURL else { return onDevice() }
        do {
            guard case .config(let config) = try client.config(attempts: 3) else { return onDevice() }
            guard let partition = config.decision.partition else { return onDevice() }
            guard config.decision.modelID == modelID, config.decision.variants.map(\.variant) == net.choiceIDs else {
                log("agent: config \(config.version) is for another model or combination than this job's; latency measured on the device")
                return onDevice()
            }
            let split = partition.splitAfterBlock
            let link = EdgeLink(url: edgeURL, token: configuration.token, tls: configuration.tls)
            let session = try link.open(net, split: split, tensors: JobEnvironment.adaptedTensors(model))
            let reference = model.forward(one, training: false)
            let remote = try link.infer(model.forwardPrefix(one, through: split))
            let gap = remote.shape == reference.shape ? zip(reference.data, remote.data).map { abs($0 - $1) }.max() ?? 0 : .infinity
            guard gap <= 1e-4 else {
                log("agent: the edge server's logits differ from this device's by \(gap); latency measured on the device")
                return onDevice()
            }
            let cutBytes = session.cutShape.reduce(4, *)
            let linkSeconds = configuration.context.bandwidthMbps.map { Double(cutBytes) * 8 / ($0 * 1e6) } ?? 0
            let rttSeconds = (configuration.context.rttMs ?? 0) / 1000
            var samples: [(total: Double, prefix: Double, edge: Double)] = []
            for run in 0..<25 {
                let start = Date()
                let features = model.forwardPrefix(one, through: split)
                let prefixSeconds = Date().timeIntervalSince(start)
                let simulated = prefixSeconds * (configuration.slowdown - 1) + linkSeconds + rttSeconds
                if simulated > 0 { Thread.sleep(forTimeInterval: simulated) }
                let sent = Date()
                _ = try link.infer(features)
                let end = Date()
                if run >= 5 {
                    samples.append((end.timeIntervalSince(start) * 1000, prefixSeconds * configuration.slowdown * 1000, end.timeIntervalSince(sent) * 1000))
                }
            }
            samples.sort { $0.total < $1.total }
            let median = samples[samples.count / 2]
            log(String(format: "agent: split after block %d with %@: logits equal the device's (max difference %g); median %.2f ms = "
                       + "prefix %.2f ms + declared link %.2f ms + edge round trip %.2f ms (+ sleep overshoot)",
                       split, edgeURL, gap, median.total, median.prefix, (linkSeconds + rttSeconds) * 1000, median.edge))
            return Measurement(ms: median.total, splitAfterBlock: split, observedEdgeRoundTripMs: median.edge - partition.edgeLatencyMs)
        } catch {
            log("agent: split inference failed (\(error)); latency measured on the device")
            return onDevice()
        }
    }
}
