@testable import Agent
import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning
import Testing

/// The three jobs, run directly on a device's images with the package they download: real training, real
/// installs, real measurements.
@Suite struct JobExecutorTests {
    func setUp() throws -> (InMemoryCoordinator, JobEnvironment, LabeledImages) {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        let data = try AgentFixture.deviceData(1)
        return (coordinator, AgentFixture.environment(coordinator, data: data), try AgentFixture.images(data))
    }

    @Test func adaptTrainsTheAdaptersOnTheUnlabeledImagesAndHandsThemOn() throws {
        let (coordinator, environment, data) = try setUp()
        let job = AgentFixture.job(steps: 40)
        let progress = JobProgress()
        let outcome = try AdaptJob(environment: environment).run(job, data: data, progress: progress)
        #expect(coordinator.calls == [.package(model: AgentFixture.modelID)])
        let metrics = try #require(outcome.result.metrics)
        #expect(outcome.result.outcome == .succeeded && outcome.result.attempt == 1)
        // TENT lowers the entropy of the device's predictions on the images it trained on.
        let before = try #require(metrics.entropyBefore), after = try #require(metrics.entropyAfter)
        #expect(after < before, "entropy \(before) → \(after)")
        #expect(metrics.steps == 40 && metrics.samples == data.count && (metrics.latencyMs ?? 0) > 0 && metrics.splitAfterBlock == nil)
        #expect(metrics.accuracyBefore != nil && metrics.accuracyAfter != nil)
        #expect(progress.snapshot["step"] == 40 && progress.snapshot["total_steps"] == 40)
        #expect(outcome.observedEdgeRoundTripMs == nil)

        // The artifact holds exactly what adaptation changed, and it did change.
        let artifact = try SafeTensors.decode(Array(try #require(outcome.artifact)))
        let net = try ElasticPackage.loadNetwork(path: AgentFixture.packagePath)
        try net.compose(ids: net.positions.map { $0.variants[0].id })
        let original = net.model.namedTensors()
        #expect(Set(artifact.tensors.keys) == Set(JobEnvironment.adaptedTensors(net.model).keys))
        #expect(artifact.tensors.keys.contains { $0.contains(".adapter.") })
        #expect(try artifact.tensors.contains { name, tensor in try tensor.floats() != original[name]?.floats() })
    }

    @Test func applyInstallsTheDomainsAggregateAndReEstimatesTheNorms() throws {
        let (coordinator, environment, data) = try setUp()
        let trained = try #require(try AdaptJob(environment: environment).run(AgentFixture.job(steps: 30), data: data, progress: JobProgress()).artifact)
        coordinator.change { $0.adapterAnswer = .adapter(trained) }
        let progress = JobProgress()
        let outcome = try ApplyJob(environment: environment).run(AgentFixture.job(.apply), data: data, progress: progress)
        #expect(coordinator.calls.suffix(2) == [.adapter(domain: AgentFixture.domainID), .package(model: AgentFixture.modelID)])
        let metrics = try #require(outcome.result.metrics)
        #expect(outcome.result.outcome == .succeeded && metrics.steps == 0 && outcome.artifact == nil)
        #expect(metrics.entropyAfter != metrics.entropyBefore, "\(metrics)")
    }

    @Test func applyRefusesAnAggregateThatHoldsMoreThanAdaptersAndNorms() throws {
        let (coordinator, environment, data) = try setUp()
        let net = try ElasticPackage.loadNetwork(path: AgentFixture.packagePath)
        let frozen = try #require(net.model.namedTensors().keys.sorted().first { !$0.contains(".adapter.") && !$0.contains("bn") })
        coordinator.change { $0.adapterAnswer = .adapter(Data(SafeTensors.encode([frozen: net.model.namedTensors()[frozen]!]))) }
        #expect { try ApplyJob(environment: environment).run(AgentFixture.job(.apply), data: data, progress: JobProgress()) } throws: { error in
            "\(error)".contains("aggregated adapter has \(frozen), which is not an adapter or batch-norm tensor")
        }
        coordinator.change { $0.adapterAnswer = .corrupt }
        let corrupt = try ApplyJob(environment: environment).run(AgentFixture.job(.apply), data: data, progress: JobProgress())
        #expect(corrupt.result.outcome == .failed && corrupt.result.error == "aggregated adapter download is corrupt")
    }

    @Test func profileMeasuresEveryVariantOfEveryBlock() throws {
        let (_, environment, data) = try setUp()
        let progress = JobProgress()
        let outcome = try ProfileJob(environment: environment).run(AgentFixture.job(.profile), data: data, progress: progress)
        let net = try ElasticPackage.loadNetwork(path: AgentFixture.packagePath)
        let latencies = try #require(outcome.result.variantLatenciesMs)
        #expect(latencies.map(\.count) == net.variantBlocks.map(\.count))
        #expect(latencies.joined().allSatisfy { $0 > 0 && $0.isFinite })
        #expect(progress.snapshot == ["positions_done": Double(latencies.count), "total_positions": Double(latencies.count)])
    }

    /// The meter only measures: without an edge server it asks nothing; with one but no split planned it reads the
    /// config and measures on the device. It never reports the context.
    @Test func theLatencyMeterMeasuresWithoutSideEffects() throws {
        let (coordinator, _, data) = try setUp()
        let net = try ElasticPackage.loadNetwork(path: AgentFixture.packagePath)
        try net.compose(ids: net.positions.map { $0.variants[0].id })
        let local = AgentFixture.environment(coordinator, data: try AgentFixture.deviceData(2)).latency
        let onDevice = local.measure(net, data: data, modelID: AgentFixture.modelID)
        #expect(onDevice.ms > 0 && onDevice.splitAfterBlock == nil && onDevice.observedEdgeRoundTripMs == nil)
        #expect(coordinator.calls.isEmpty)

        let withEdge = AgentFixture.environment(coordinator, data: try AgentFixture.deviceData(2), edgeURL: "http://127.0.0.1:9").latency
        let unsplit = withEdge.measure(net, data: data, modelID: AgentFixture.modelID)
        #expect(unsplit.ms > 0 && unsplit.splitAfterBlock == nil && unsplit.observedEdgeRoundTripMs == nil)
        #expect(coordinator.calls == [.config])
        // An edge server that does not answer has no round trip.
        #expect(withEdge.edgeRoundTripMs() == nil)
    }
}
