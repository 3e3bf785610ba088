@testable import Agent
import FleetAPI
import Foundation
import Testing

/// The drift reporter against the in-memory coordinator, over a real inference service serving the test package:
/// the start-up baseline on the local images, one report per change of the window (none while it stands still),
/// the numbers the window holds, and an outage logged once and recovered from.
@Suite struct DriftReporterTests {
    @Test func itReportsTheWindowOnlyWhenItChangesWithTheStartBaseline() async throws {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        let dir = try ImageFiles.temporaryDirectory("drift")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for i in 0..<48 { try ImageFiles.write(ImageFiles.png(ServingTests.test, i), to: dir + "/frame-\(i).png") }
        var configuration = AgentFixture.configuration(data: dir)
        configuration.modelPath = AgentFixture.packagePath
        var serving = ServingConfiguration(host: "127.0.0.1", port: 0)
        serving.configPollSeconds = 0.2
        let log = LogLines()
        let service = InferenceService(configuration: configuration, serving: serving, client: coordinator, log: log.write)
        try service.start()
        defer { service.shutdown() }
        try await eventually("a network is served") { service.served != nil }
        let local = LocalImages(directory: dir, window: 64, watch: true, log: log.write)
        let reporter = DriftReporter(service: service, client: coordinator, local: local, interval: 1, log: log.write)

        // The first round takes the baseline on the 48 local images and reports it (an empty window).
        #expect(reporter.tick())
        let net = try #require(service.served)
        let expected = InferenceService.baseline(net, try local.images(for: net.input).data)
        let first = try #require(coordinator.calls.compactMap(\.drift).last)
        #expect(first.baselineEntropy == expected.entropy && first.baselineConfidence == expected.confidence && expected.samples == 48)
        #expect(first.windowSize == 0 && first.entropyRise == nil && first.validate().isEmpty)
        #expect(log.contains("drift baseline at start"))
        // Nothing changed: nothing sent.
        #expect(!reporter.tick())
        #expect(coordinator.calls.compactMap(\.drift).count == 1)

        // A shifted stream: 40 predictions far less sure than the baseline.
        for _ in 0..<40 { service.drift.record(entropy: expected.entropy + 0.5, confidence: expected.confidence - 0.3) }
        #expect(reporter.tick())
        let second = try #require(coordinator.calls.compactMap(\.drift).last)
        #expect(second.windowSize == 40)
        #expect(abs((second.entropyRise ?? 0) - 0.5) < 1e-9 && abs((second.confidenceDrop ?? 0) - 0.3) < 1e-9)
        #expect(second.validate().isEmpty, "what the agent sends passes the coordinator's checks: \(second.validate())")
        #expect(DriftPolicy.state(of: second) == .drifting)
        #expect(log.contains("drift reported: drifting"))

        // An outage: the report fails (logged once), and goes when the coordinator is back.
        coordinator.setDown(true)
        service.drift.record(entropy: 2, confidence: 0.2)
        #expect(!reporter.tick())
        #expect(!reporter.tick())
        #expect(log.all.filter { $0.contains("could not report drift") }.count == 1)
        coordinator.setDown(false)
        #expect(reporter.tick())
        #expect(coordinator.calls.compactMap(\.drift).last?.windowSize == 41)
    }
}
