import ElasticModel
import Foundation
import Learning
import ONNX
import ONNXExport
import ONNXImport
import Testing
import TestSupport

/// torchvision's own networks with real weights, at 3×32×32 with their 1000-class heads: the committed structure-only
/// exports (Tests/ONNXTests/Fixtures/*.weightless.onnx) filled by deploy/tools/fill_onnx_weights.py (seeded,
/// deterministic) into temporary files, so the repository stays small and onnxruntime and the importer read the
/// same weights.
enum Torchvision {
    static let fixtures = ONNXExportTests.root.appendingPathComponent("Tests/ONNXTests/Fixtures")
    static let fill = ONNXExportTests.root.appendingPathComponent("deploy/tools/fill_onnx_weights.py").path
    static let spec = ONNXInputSpec(channels: 3, height: 32, width: 32)
    /// ImageNet's mean and std, as a torchvision model expects them; the package's first node applies them.
    static let preprocessing = PackageManifest.InputPreprocessing(resize: .init(shorterSide: nil, width: 32, height: 32), crop: nil, channels: "rgb",
                                                                  mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    /// `model.mode.weightless.onnx` with its weights filled, in a temporary file the caller removes.
    static func filled(_ model: String, _ mode: String) throws -> String {
        let out = ONNXExportTests.temp(".\(model).\(mode).onnx")
        let run = try ChildProcess.run([ONNXExportTests.python, fill, fixtures.appendingPathComponent("\(model).\(mode).weightless.onnx").path, out])
        guard run.status == 0 else {
            Issue.record("fill_onnx_weights.py failed (\(run.status)): \(run.output)")
            throw ONNXExportError("fill_onnx_weights.py failed")
        }
        return out
    }

    /// 32 images: the SE-ResNet fixture's 8 reference inputs as pixels, then mirrored and shifted copies with seeded
    /// noise (a few distinct images are all a package build needs here).
    static let images: LabeledImages = {
        let (tensors, _) = try! SafeTensors.decode([UInt8](try! Data(contentsOf: fixtures.appendingPathComponent("se_resnet.reference.safetensors"))))
        let x = try! tensors["input"]!.floats()
        var pixels = x.map { UInt8(max(0, min(255, (($0 * 0.353 + 0.286) * 255).rounded()))) }
        let per = 3 * 32 * 32
        var rng = SeededRandom(seed: 17)
        for k in 8..<32 {
            let src = k % 8, shift = k / 8, mirror = k % 2 == 0
            for c in 0..<3 { for y in 0..<32 { for xx in 0..<32 {
                let sx = mirror ? 31 - xx : (xx + shift) % 32
                let v = Int(pixels[src * per + (c * 32 + y) * 32 + sx]) + Int(rng.next() % 31) - 15
                pixels.append(UInt8(max(0, min(255, v))))
            } } }
        }
        return LabeledImages(images: pixels, labels: nil, count: 32, channels: 3, height: 32, width: 32)
    }()

    /// The model's own input (ImageNet normalisation) for images 0..<n.
    static func modelInput(_ n: Int) -> Tensor { GraphPackageBuilder.modelTensor(images, Array(0..<n), preprocessing) }
}

/// Import equality: the imported network's logits equal onnxruntime's on the same input, for eval-mode exports (batch
/// norms folded; also with them put back and their statistics estimated) and preserve-mode ones.
struct TorchvisionImportTests {
    @Test(arguments: ["resnet18", "mobilenet_v2", "mobilenet_v3_small"].flatMap { m in ["eval", "preserve"].map { (m, $0) } })
    func importedLogitsEqualOnnxruntime(model: String, mode: String) throws {
        let path = try Torchvision.filled(model, mode)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let onnx = try ONNXLoader().load(contentsOf: URL(fileURLWithPath: path))
        let x = Torchvision.modelInput(8)
        let (expected, report) = try ONNXExportTests.onnxruntime([path], x)
        #expect(report.outputShape == [8, 1000] && report.checker == "full_check passed")
        let plain = try ONNXImporter.convert(onnx, input: Torchvision.spec)
        #expect(plain.hasSourceWeights && plain.classes == 1000)
        let direct = ONNXExportTests.maxAbs(InferenceGraph(plain.graph, store: plain.store).forward([x])[0].data, expected)
        let reinserted = try ONNXImporter.convert(onnx, input: Torchvision.spec, batchNorm: .afterFoldedConvolutions)
        try ONNXImporter.estimateStatistics(reinserted, on: [Torchvision.modelInput(32)])
        let withNorms = ONNXExportTests.maxAbs(InferenceGraph(reinserted.graph, store: reinserted.store).forward([x])[0].data, expected)
        let scale = expected.map(abs).max() ?? 0
        print("torchvision \(model) (\(mode)): imported vs onnxruntime max abs \(direct), with \(reinserted.insertedBatchNorms.count) "
              + "batch norms put back \(withNorms) (logits up to \(scale))")
        #expect(direct <= 1e-4 && withNorms <= 1e-4)
        #expect(mode == "preserve" ? reinserted.insertedBatchNorms.isEmpty : !reinserted.insertedBatchNorms.isEmpty)
    }
}

/// Packages built from torchvision's networks (short distillation against the 1000-class teacher's agreement), their
/// blocks counted, then random combinations with TENT-trained adapters exported: onnxruntime's logits equal the
/// engine's, the file passes onnx.checker's full check, and split exports compose to the whole.
struct TorchvisionPackageExportTests {
    static func build(_ model: String) throws -> (ElasticPackage, GraphPackageBuilder.Report, seconds: Double) {
        let path = try Torchvision.filled(model, "eval")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let started = Date()
        let build = ONNXPackageBuildInputs(path: path)
        let (package, report) = try build.run(name: "torchvision-\(model)")
        return (package, report, Date().timeIntervalSince(started))
    }

    @Test(arguments: [("resnet18", 8), ("mobilenet_v2", 10), ("mobilenet_v3_small", 2)])
    func packageBuildsAndCombinationsExportExactly(model: String, minimumBlocks: Int) throws {
        let (built, report, seconds) = try Self.build(model)
        let bytes = try built.encode()
        let package = try ElasticPackage.decode(bytes)
        let m = package.manifest
        print("torchvision \(model) package: \(report.blocks.count) blocks, variants \(m.blocks.map { $0.variants.map(\.id).joined(separator: "/") }), "
              + "\(m.combinationCount) combinations, \(bytes.count) bytes, built in \(String(format: "%.1f", seconds)) s; "
              + "original vs source max abs \(report.originalMaxAbsDifference)")
        if model == "resnet18" { #expect(report.blocks.count == 8) } else { #expect(report.blocks.count >= minimumBlocks) }
        #expect(m.architecture.classes == 1000 && m.accuracyMetric == "teacher-agreement" && m.accuracy.baseAccuracy == 1)
        #expect(report.originalMaxAbsDifference <= 1e-4)
        #expect((m.architecture.graph?.head != nil) == (model == "mobilenet_v3_small"), "the hidden classifier layers are kept whole")
        if let head = m.architecture.graph?.head {
            #expect(head.nodes.map(\.op) == ["gemm", "hard_swish"], "\(head.nodes.map(\.op))")
            // A manifest whose classifier holds an op other than gemms and element-wise ones is refused naming it.
            var bad = m
            bad.architecture.graph!.head!.nodes[1].op = "batch_norm"
            do {
                _ = try ElasticPackage.decode(try ElasticPackage(manifest: bad, tensors: package.tensors).encode())
                Issue.record("a batch norm in the classifier was accepted")
            } catch let error as PackageError {
                guard case .invalidManifest(let field, _) = error else { Issue.record("\(error)"); return }
                #expect(field == "architecture.graph.head.nodes[1].op", "\(error)")
            }
        }

        var rng = SeededRandom(seed: 41)
        let images = Torchvision.images
        let x = images.tensor(Array(0..<8))
        for round in 0..<2 {
            let export = try ModelExport(package: package)
            try export.compose(ONNXExportTests.randomCombination(export.network, &rng))
            _ = Adaptation.adapt(export.network.model, on: images, loss: .tent, steps: 2, batchSize: 8, learningRate: 5e-3,
                                 trainable: .adaptersAndNorms, seed: UInt64(round))
            let adapterMax = export.network.model.namedTensors().filter { $0.key.contains(".adapter.") }.values
                .map { (try? $0.floats().map(abs).max()) ?? 0 }.compactMap { $0 }.max() ?? 0
            #expect(adapterMax > 0, "the adapters trained away from zero")
            let expected = export.network.model.forward(x, training: false).data
            let whole = ONNXExportTests.temp(".onnx")
            defer { try? FileManager.default.removeItem(atPath: whole) }
            let t0 = Date()
            try ModelExport.writeAtomically(try export.onnx(), to: whole)
            let exportSeconds = Date().timeIntervalSince(t0)
            let size = (try? FileManager.default.attributesOfItem(atPath: whole)[.size] as? Int) ?? 0
            let (logits, report) = try ONNXExportTests.onnxruntime([whole], x)
            let error = ONNXExportTests.maxAbs(logits, expected)
            print("torchvision \(model) \(export.network.choiceIDs.joined(separator: ",")): exported \(size) bytes in "
                  + "\(String(format: "%.2f", exportSeconds)) s; onnxruntime vs engine max abs \(error) (logits up to \(expected.map(abs).max() ?? 0))")
            #expect(error <= 1e-4)
            #expect(report.checker == "full_check passed" && report.inputDims == ["N", "3", "32", "32"] && report.outputShape == [8, 1000])

            let k = Int(rng.next() % UInt64(m.blocks.count + 1)) - 1
            let devicePart = ONNXExportTests.temp(".device.onnx"), edgePart = ONNXExportTests.temp(".edge.onnx")
            defer { try? FileManager.default.removeItem(atPath: devicePart); try? FileManager.default.removeItem(atPath: edgePart) }
            try ModelExport.writeAtomically(try export.onnx(part: .device, splitAfterBlock: k), to: devicePart)
            try ModelExport.writeAtomically(try export.onnx(part: .edge, splitAfterBlock: k), to: edgePart)
            let split = try ONNXExportTests.onnxruntime([devicePart, edgePart], x)
            let splitError = ONNXExportTests.maxAbs(split.logits, expected)
            print("torchvision \(model) split after block \(k): device then edge vs engine max abs \(splitError)")
            #expect(splitError <= 1e-4 && split.report.checker == "full_check passed")
        }
    }
}

/// The build the tests run: the filled file, the images above and small step counts.
struct ONNXPackageBuildInputs {
    var path: String

    func run(name: String) throws -> (ElasticPackage, GraphPackageBuilder.Report) {
        let onnx = try ONNXLoader().load(contentsOf: URL(fileURLWithPath: path))
        let imported = try ONNXImporter.convert(onnx, input: Torchvision.spec, batchNorm: .afterFoldedConvolutions)
        try ONNXImporter.estimateStatistics(imported, on: [Torchvision.modelInput(Torchvision.images.count)])
        var options = ElasticBuilder.Options()
        options.sparsities = [0, 0.5]
        options.distillationSteps = 3
        options.distillationBatchSize = 8
        options.latencyRuns = 1
        options.warmupRuns = 0
        options.calibrationCombinations = 1
        options.validationCombinations = 1
        return try GraphPackageBuilder.build(
            .init(graph: imported.graph, store: imported.store, valueShapes: imported.valueShapes, description: (path as NSString).lastPathComponent),
            name: name, preprocessing: Torchvision.preprocessing, classNames: nil, sourceImages: Torchvision.images, validation: nil,
            dataset: "fixture images", options: options)
    }
}
