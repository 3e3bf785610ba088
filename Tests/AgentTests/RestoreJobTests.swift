@testable import Agent
import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning
import Testing

/// The `restore` job on a device's images with the real package: it installs exactly the adapters its document
/// names (checked against their digest), or none, and hands the result on for the served network.
@Suite struct RestoreJobTests {
    func restoreJob(adapters: AdapterChoice?, sha256: String?) -> LeasedJob {
        var job = AgentFixture.job(.restore, loss: .noTraining, steps: 0)
        job.document.restore = RestoreTarget(configVersion: 3, adapters: adapters, artifactJobID: adapters == nil ? nil : UUID(), sha256: sha256)
        return job
    }

    @Test func restoreInstallsExactlyTheNamedAdapters() throws {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        let dir = try AgentFixture.deviceData(2)
        let environment = AgentFixture.environment(coordinator, data: dir), data = try AgentFixture.images(dir)
        let trained = try #require(try AdaptJob(environment: environment).run(AgentFixture.job(steps: 20), data: data, progress: JobProgress()).artifact)
        coordinator.change { $0.restoreAnswer = .adapter(trained) }
        let job = restoreJob(adapters: AdapterChoice(domainID: AgentFixture.domainID, source: .local, version: nil),
                             sha256: CoordinatorClient.sha256Hex(trained))
        let outcome = try RestoreJob(environment: environment).run(job, data: data, progress: JobProgress())
        #expect(outcome.result.outcome == .succeeded && outcome.artifact == nil, "\(outcome.result)")
        #expect(coordinator.calls.contains(.restoreAdapters(job: job.id)))
        let installed = try #require(outcome.adapted?.tensors)
        for (name, tensor) in try SafeTensors.decode(Array(trained)).tensors {
            #expect(try installed[name]?.floats() == tensor.floats(), "\(name) is the artifact's")
        }

        // Bytes that are not the ones the job names are refused; nothing is handed on.
        coordinator.change { $0.restoreAnswer = .adapter(trained + Data([0])) }
        let refused = try RestoreJob(environment: environment).run(job, data: data, progress: JobProgress())
        #expect(refused.result.outcome == .failed && refused.adapted == nil)
        #expect(refused.result.error?.contains("digest") == true, "\(refused.result)")
        coordinator.change { $0.restoreAnswer = .missing(status: 404) }
        let missing = try RestoreJob(environment: environment).run(job, data: data, progress: JobProgress())
        #expect(missing.result.outcome == .failed && missing.result.error?.contains("HTTP 404") == true)
    }

    @Test func restoreWithoutAdaptersRunsThePlainPackage() throws {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        let dir = try AgentFixture.deviceData(3)
        let environment = AgentFixture.environment(coordinator, data: dir), data = try AgentFixture.images(dir)
        let job = restoreJob(adapters: nil, sha256: nil)
        let outcome = try RestoreJob(environment: environment).run(job, data: data, progress: JobProgress())
        #expect(outcome.result.outcome == .succeeded)
        #expect(!coordinator.calls.contains(.restoreAdapters(job: job.id)), "nothing to download")
        let net = try ElasticPackage.loadNetwork(path: AgentFixture.packagePath)
        try net.compose(ids: net.positions.map { $0.variants[0].id })
        let plain = JobEnvironment.adaptedTensors(net.model)
        let handed = try #require(outcome.adapted?.tensors)
        #expect(Set(handed.keys) == Set(plain.keys))
        for (name, tensor) in plain { #expect(try handed[name]?.floats() == tensor.floats(), "\(name) is the package's") }
        #expect(FileManager.default.fileExists(atPath: dir + "/model.onnx"), "model.onnx rewritten")
    }
}
