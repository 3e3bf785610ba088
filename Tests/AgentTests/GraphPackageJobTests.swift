@testable import Agent
import ElasticModel
import FleetAPI
import Foundation
import Learning
import ONNX
import ONNXImport
import Testing

/// A device adapting a graph package (the imported SE-ResNet fixture): the same adapt job as for the built-in
/// families, real TENT steps on its images, an artifact of adapters and batch norms.
@Suite struct GraphPackageJobTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ONNXTests/Fixtures")

    /// The fixture's 8 reference inputs as pixels, with mirrored and noisy copies (48 images, no labels).
    static func images() throws -> LabeledImages {
        let (tensors, _) = try SafeTensors.decode([UInt8](try Data(contentsOf: fixtures.appendingPathComponent("se_resnet.reference.safetensors"))))
        let x = try #require(tensors["input"]).floats()
        let original = x.map { UInt8(max(0, min(255, (($0 * 0.353 + 0.286) * 255).rounded()))) }
        var pixels = original
        var rng = SeededRandom(seed: 9)
        for k in 8..<48 {
            let i = k % 8, mirror = k % 2 == 0
            for c in 0..<3 { for y in 0..<32 { for xx in 0..<32 {
                let v = Int(original[((i * 3 + c) * 32 + y) * 32 + (mirror ? 31 - xx : xx)]) + Int(rng.next() % 31) - 15
                pixels.append(UInt8(max(0, min(255, v))))
            } } }
        }
        return LabeledImages(images: pixels, labels: nil, count: 48, channels: 3, height: 32, width: 32)
    }

    /// A quick build: two widths, a few distillation steps, one measured combination each.
    static var options: ElasticBuilder.Options {
        var options = ElasticBuilder.Options()
        options.sparsities = [0, 0.5]
        options.distillationSteps = 5
        options.latencyRuns = 1
        options.warmupRuns = 0
        options.calibrationCombinations = 1
        options.validationCombinations = 1
        return options
    }

    static func packagePath(_ images: LabeledImages) throws -> String {
        let onnx = try ONNXLoader().load(contentsOf: fixtures.appendingPathComponent("se_resnet.eval.onnx"))
        let imported = try ONNXImporter.convert(onnx, input: ONNXInputSpec(channels: 3, height: 32, width: 32), batchNorm: .afterFoldedConvolutions)
        let pre = PackageManifest.InputPreprocessing(resize: .init(shorterSide: nil, width: 32, height: 32), crop: nil, channels: "rgb",
                                                     mean: [0.286, 0.286, 0.286], std: [0.353, 0.353, 0.353])
        try ONNXImporter.estimateStatistics(imported, on: [GraphPackageBuilder.modelTensor(images, Array(0..<images.count), pre)])
        let (package, _) = try GraphPackageBuilder.build(
            .init(graph: imported.graph, store: imported.store, valueShapes: imported.valueShapes, description: "se_resnet"),
            name: "agent-graph", preprocessing: pre, classNames: nil, sourceImages: images, validation: nil, dataset: "fixture images",
            options: Self.options)
        let path = NSTemporaryDirectory() + "fleetadapt-agent-graph-\(getpid())-\(UUID().uuidString.prefix(6)).fap"
        try Data(try package.encode()).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func adaptJobTrainsTheAdaptersOfAGraphPackage() throws {
        let data = try Self.images()
        let path = try Self.packagePath(data)
        let dir = NSTemporaryDirectory() + "fleetadapt-agent-graph-data-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + "-cache")
        }
        let coordinator = InMemoryCoordinator(packagePath: path)
        let environment = AgentFixture.environment(coordinator, data: dir)
        let outcome = try AdaptJob(environment: environment).run(AgentFixture.job(steps: 20), data: data, progress: JobProgress())
        #expect(outcome.result.outcome == .succeeded, "\(outcome.result)")
        let metrics = try #require(outcome.result.metrics)
        let before = try #require(metrics.entropyBefore), after = try #require(metrics.entropyAfter)
        #expect(after < before, "entropy \(before) → \(after)")
        let artifact = try SafeTensors.decode(Array(try #require(outcome.artifact)))
        let net = try ElasticPackage.loadNetwork(path: path)
        let original = net.model.namedTensors()
        #expect(artifact.tensors.keys.contains { $0.contains(".adapter.") })
        #expect(artifact.tensors.keys.allSatisfy { $0.contains(".adapter.") || $0.contains(".bn") }, "\(artifact.tensors.keys.sorted().prefix(8))")
        #expect(try artifact.tensors.contains { name, tensor in try tensor.floats() != original[name]?.floats() })
    }
}
