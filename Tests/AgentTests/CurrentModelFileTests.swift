@testable import Agent
import ElasticModel
import Foundation
import Learning
import ONNXExport
import Testing

/// After an adapt or apply, the device's data directory holds `model.onnx`: its combination with the tensors the job
/// left in the network, byte for byte the export of the package with the job's artifact installed.
@Suite struct CurrentModelFileTests {
    @Test func adaptAndApplyWriteTheCurrentModelIntoTheDataDirectory() throws {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        let dir = try AgentFixture.deviceData(3)
        let environment = AgentFixture.environment(coordinator, data: dir)
        let data = try AgentFixture.images(dir)
        let path = CurrentModelFile.path(environment.configuration)
        #expect(!FileManager.default.fileExists(atPath: path))

        // An adapt renders the file but leaves writing it to the loop, once the coordinator accepted the result
        // (JobLoopTests/aRejectedAdaptResultIsNotInstalledAndAnAcceptedOneIs).
        let outcome = try AdaptJob(environment: environment).run(AgentFixture.job(steps: 10), data: data, progress: JobProgress())
        #expect(outcome.installsWhenAccepted)
        #expect(!FileManager.default.fileExists(atPath: path))
        CurrentModelFile.write(try #require(outcome.modelFile), environment: environment)
        let artifact = try SafeTensors.decode(Array(try #require(outcome.artifact))).tensors
        let written = try #require(FileManager.default.contents(atPath: path))
        let export = try ModelExport(package: try ElasticPackage.read(path: AgentFixture.packagePath))
        try export.compose([:])
        try export.install(adapters: artifact)
        #expect(Array(written) == (try export.onnx()), "model.onnx is the export of the package with the job's adapters")
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".tmp") }.isEmpty)

        // An apply of another device's adapters rewrites it (new adapters, re-estimated statistics).
        let trained = try #require(outcome.artifact)
        coordinator.change { $0.adapterAnswer = .adapter(trained) }
        let applied = try ApplyJob(environment: environment).run(AgentFixture.job(.apply), data: data, progress: JobProgress())
        #expect(!applied.installsWhenAccepted, "an apply installs what the coordinator chose, at once")
        let rewritten = try #require(FileManager.default.contents(atPath: path))
        #expect(rewritten != written)
    }
}
