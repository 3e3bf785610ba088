import ElasticModel
import FleetAPI
import FleetClient
import Foundation

/// Sends the drift window to the coordinator (`POST /v1/agent/drift`), batched: one report at most every
/// `interval` seconds, and only when the window changed since the last one sent. The coordinator judges the device
/// `ok` or `drifting` from it, and its triggers may start an adaptation campaign.
///
/// Before the device's first adaptation there is no baseline to compare with; the reporter then takes one on the
/// local data (the folder's newest images when it starts) as soon as a network is served, so a stream that
/// changes later shows as a rise against what the device saw at start.
final class DriftReporter: Sendable {
    let service: InferenceService
    let client: any AgentCoordinator
    let local: LocalImages
    let interval: Double
    let log: @Sendable (String) -> Void
    private let stopFlag = Shared(false)
    private let lastSent = Shared<DriftReport?>(nil)
    private let lastError = Shared<String?>(nil)
    /// Generations of the served network the start-up baseline was tried on (once each).
    private let baselineTried = Shared<Int?>(nil)

    init(service: InferenceService, client: any AgentCoordinator, local: LocalImages, interval: Double, log: @escaping @Sendable (String) -> Void) {
        self.service = service
        self.client = client
        self.local = local
        self.interval = max(0.1, interval)
        self.log = log
    }

    func start() {
        Thread { [self] in
            while !stopFlag.value {
                var waited = 0.0
                while waited < interval && !stopFlag.value {
                    Thread.sleep(forTimeInterval: 0.1)
                    waited += 0.1
                }
                if !stopFlag.value { tick() }
            }
        }.start()
    }

    func stop() { stopFlag.set(true) }

    /// What the window says now, as a report.
    var report: DriftReport {
        let s = service.drift.snapshot
        return DriftReport(windowSize: s.windowSize, windowEntropy: s.windowEntropy, windowConfidence: s.windowConfidence,
                           baselineEntropy: s.baselineEntropy, baselineConfidence: s.baselineConfidence, entropyRise: s.entropyRise,
                           confidenceDrop: s.confidenceDrop, configVersion: service.served?.configVersion)
    }

    /// One round: the start-up baseline when missing, then the report if it changed. Returns whether one was sent.
    @discardableResult
    func tick() -> Bool {
        takeStartBaselineIfMissing()
        let now = report
        guard now != lastSent.value else { return false }
        do {
            let drift = try client.reportDrift(now, attempts: 2)
            if lastSent.value.map({ DriftPolicy.state(of: $0) }) != drift.state {
                let rise = now.entropyRise.map { String(format: "%.4f", $0) } ?? "none"
                let drop = now.confidenceDrop.map { String(format: "%.4f", $0) } ?? "none"
                log("agent: drift reported: \(drift.state.rawValue) (window \(now.windowSize), entropy rise \(rise), confidence drop \(drop))")
            }
            lastSent.set(now)
            lastError.set(nil)
            return true
        } catch {
            let message = "\(error)"
            if lastError.value != message { log("agent: could not report drift: \(message)") }
            lastError.set(message)
            return false
        }
    }

    /// Takes the baseline on the local data with the served network, once per generation, when none exists.
    func takeStartBaselineIfMissing() {
        guard service.drift.snapshot.baselineEntropy == nil, let network = service.served, baselineTried.value != network.generation else { return }
        baselineTried.set(network.generation)
        do {
            let (data, _) = try local.images(for: network.input)
            guard data.count > 0 else { return }
            let baseline = InferenceService.baseline(network, data)
            if service.drift.setBaselineIfMissing(baseline) {
                log(String(format: "agent: drift baseline at start: entropy %.4f, confidence %.4f on %d local images",
                           baseline.entropy, baseline.confidence, baseline.samples))
            }
        } catch {
            log("agent: no drift baseline at start (local data: \(error))")
        }
    }
}
