import ElasticModel
import Foundation
import Learning
import ONNX
import ONNXExport
import ONNXImport
import Testing
import TestSupport

/// Small packages of both built-in families (real training, distillation and profiling, few steps), built once.
enum ExportFixture {
    static func build(_ architecture: Architecture, _ name: String) -> ElasticPackage {
        try! SmallPackage(architecture: architecture, name: name, description: "export test fixture", trainImages: 800,
                          recipe: BaseModelRecipe(steps: 40, seed: 3), distillImages: 128, distillationSteps: 8,
                          calibrationCombinations: 2, validationCombinations: 2, validationImages: 100).build().package
    }

    static let resnet = build(.resnet(widths: [8, 12, 16], blocksPerStage: [1, 2, 1]), "export-resnet")
    static let mobilenet = build(.mobileNetV2(stemWidth: 8, stages: [.init(channels: 8, blocks: 1, stride: 1), .init(channels: 12, blocks: 2, stride: 2),
                                                                     .init(channels: 16, blocks: 1, stride: 2)], expansion: 2), "export-mobilenet")
    /// Fog at severity 3 on the start of the test split: the target domain the adapters are trained on.
    static let target: LabeledImages = {
        let clean = try! FashionMNIST.load(split: .test, limit: 96)
        var fog = try! Corruption.fog.apply(to: clean, severity: 3, seed: 11)
        fog.labels = nil
        return fog
    }()
}

/// The line `deploy/tools/onnx_check.py` prints.
struct ONNXCheckReport: Decodable {
    var checker: String
    var irVersion: Int
    var opset: Int
    var inputs: [String]
    var outputs: [String]
    var inputDims: [String]
    var metadata: [String: String]
    var outputShape: [Int]
    enum CodingKeys: String, CodingKey {
        case checker, opset, inputs, outputs, metadata
        case irVersion = "ir_version"
        case inputDims = "input_dims"
        case outputShape = "output_shape"
    }
}

/// The exported ONNX files against onnxruntime, an independent implementation, in the test virtualenv.
struct ONNXExportTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let python = root.appendingPathComponent(".build/venv-onnx/bin/python").path
    static let checker = root.appendingPathComponent("deploy/tools/onnx_check.py").path

    static func temp(_ suffix: String) -> String { NSTemporaryDirectory() + "fleetadapt-export-\(UUID().uuidString.prefix(8))\(suffix)" }

    /// onnx.checker (full check) and onnxruntime on `models` chained, for input `x`; the logits and the report line.
    static func onnxruntime(_ models: [String], _ x: Tensor) throws -> (logits: [Float], report: ONNXCheckReport) {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("""
                the onnxruntime virtualenv is missing at \(python): create it with \
                `python3 -m venv .build/venv-onnx && .build/venv-onnx/bin/pip install onnxruntime onnx numpy` (deploy/test.sh does)
                """)
            throw ONNXExportError("no onnxruntime virtualenv")
        }
        let input = temp(".in.f32"), output = temp(".out.f32")
        defer { try? FileManager.default.removeItem(atPath: input); try? FileManager.default.removeItem(atPath: output) }
        try x.data.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: input))
        var argv = [python, checker, models[0]]
        if models.count > 1 { argv += ["--then", models[1]] }
        argv += ["--input", input, "--shape", x.shape.map(String.init).joined(separator: ","), "--output", output]
        let run = try ChildProcess.run(argv)
        guard run.status == 0 else {
            Issue.record("onnx_check.py failed (\(run.status)): \(run.output)")
            throw ONNXExportError("onnx_check.py failed")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: output))
        let logits = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let line = run.output.split(separator: "\n").last.map(String.init) ?? ""
        return (logits, try JSONDecoder().decode(ONNXCheckReport.self, from: Data(line.utf8)))
    }

    static func maxAbs(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// A random combination of `net`'s variants (seeded).
    static func randomCombination(_ net: ElasticNetwork, _ rng: inout SeededRandom) -> [String: String] {
        var out: [String: String] = [:]
        for p in net.positions { out[p.name] = p.variants[Int(rng.next() % UInt64(p.variants.count))].id }
        return out
    }

    /// Trains the adapters (and norms) of the composed network on the target domain with TENT, as a device's adapt
    /// job does, and returns the artifact: the adapted tensors of this combination.
    static func trainAdapters(_ export: ModelExport, seed: UInt64) throws -> [String: SafeTensor] {
        let model = export.network.model
        _ = Adaptation.adapt(model, on: ExportFixture.target, loss: .tent, steps: 4, batchSize: 32, learningRate: 5e-3,
                             trainable: .adaptersAndNorms, seed: seed)
        let names = try AdaptationLayout(network: export.network).tensors(for: export.network.choiceIDs)
        let artifact = model.namedTensors().filter { names[$0.key] != nil }
        let adapterMax = try artifact.filter { $0.key.contains(".adapter.") }.values.map { try $0.floats().map(abs).max() ?? 0 }.max() ?? 0
        #expect(adapterMax > 0, "the adapters trained away from zero")
        return artifact
    }

    /// Random combinations with trained adapters, whole and split: onnxruntime's logits equal the engine's.
    func exportedCombinationsMatch(_ package: ElasticPackage, family: String, seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let x = ExportFixture.target.tensor(Array(0..<8))
        for round in 0..<3 {
            // The device: a network composed, adapted in place, its artifact saved.
            let device = try ModelExport(package: package)
            let combination = Self.randomCombination(device.network, &rng)
            try device.compose(combination)
            let artifact = try Self.trainAdapters(device, seed: seed &+ UInt64(round))
            let expected = device.network.model.forward(x, training: false).data
            let adaptersFile = Self.temp(".safetensors")
            defer { try? FileManager.default.removeItem(atPath: adaptersFile) }
            try Data(SafeTensors.encode(artifact)).write(to: URL(fileURLWithPath: adaptersFile))

            // The export: the package, the combination and the artifact, as `model export` reads them.
            let export = try ModelExport(package: package)
            try export.compose(combination)
            try export.install(adaptersFile: adaptersFile)
            let whole = Self.temp(".onnx")
            defer { try? FileManager.default.removeItem(atPath: whole) }
            try ModelExport.writeAtomically(try export.onnx(), to: whole)
            let (logits, report) = try Self.onnxruntime([whole], x)
            let error = Self.maxAbs(logits, expected)
            print("\(family) \(device.network.choiceIDs.joined(separator: ",")): onnxruntime vs engine max abs \(error) over \(logits.count) logits")
            #expect(error <= 1e-4)
            #expect(report.checker == "full_check passed" && report.opset == 14 && report.irVersion == 7)
            #expect(report.inputDims == ["N", "1", "28", "28"] && report.outputShape == [8, 10])
            #expect(report.inputs == ["input"] && report.outputs == ["logits"])
            let metadata = report.metadata
            #expect(metadata["class_names"]?.contains("Ankle boot") == true)
            #expect(metadata["preprocessing"]?.contains("\"mean\"") == true)
            #expect(metadata["fleetadapt.variants"] == zip(export.network.positions, export.network.choiceIDs).map { "\($0.name)=\($1)" }.joined(separator: ","))

            // Split at a random point: device part then edge part equals the whole.
            let k = Int(rng.next() % UInt64(package.manifest.blocks.count + 1)) - 1
            let devicePart = Self.temp(".device.onnx"), edgePart = Self.temp(".edge.onnx")
            defer { try? FileManager.default.removeItem(atPath: devicePart); try? FileManager.default.removeItem(atPath: edgePart) }
            try ModelExport.writeAtomically(try export.onnx(part: .device, splitAfterBlock: k), to: devicePart)
            try ModelExport.writeAtomically(try export.onnx(part: .edge, splitAfterBlock: k), to: edgePart)
            let split = try Self.onnxruntime([devicePart, edgePart], x)
            let splitError = Self.maxAbs(split.logits, expected)
            print("\(family) split after block \(k): device then edge vs engine max abs \(splitError)")
            #expect(splitError <= 1e-4)
            // The device part alone gives the engine's features after block k.
            let features = try Self.onnxruntime([devicePart], x)
            let engineFeatures = export.network.model.forwardPrefix(x, through: k).data
            #expect(Self.maxAbs(features.logits, engineFeatures) <= 1e-4)
        }
    }

    @Test func resnetCombinationsWithTrainedAdaptersMatchOnnxruntime() throws {
        try exportedCombinationsMatch(ExportFixture.resnet, family: "resnet", seed: 21)
    }

    @Test func mobilenetCombinationsWithTrainedAdaptersMatchOnnxruntime() throws {
        try exportedCombinationsMatch(ExportFixture.mobilenet, family: "mobilenetv2", seed: 22)
    }

    /// Lite-residual adapters (pool, grouped conv, nearest upsample, exported as two Gathers) on the MobileNetV2 package.
    @Test func liteResidualAdaptersMatchOnnxruntime() throws {
        let package = ExportFixture.mobilenet
        var manifest = package.manifest
        manifest.adapter.kind = AdapterKind.liteResidual.rawValue
        let net = try ElasticNetwork(architecture: manifest.architecture, positions: manifest.blocks, adapterKind: .liteResidual)
        for (name, t) in package.tensors where !name.contains(".adapter.") { try net.model.store.set(name, try t.floats()) }
        let export = ModelExport(network: net, manifest: manifest)
        var rng = SeededRandom(seed: 5)
        try export.compose(Self.randomCombination(net, &rng))
        _ = try Self.trainAdapters(export, seed: 5)
        let x = ExportFixture.target.tensor(Array(0..<8))
        let expected = net.model.forward(x, training: false).data
        let path = Self.temp(".onnx")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ModelExport.writeAtomically(try export.onnx(), to: path)
        let error = Self.maxAbs(try Self.onnxruntime([path], x).logits, expected)
        print("mobilenetv2 lite-residual \(net.choiceIDs.joined(separator: ",")): onnxruntime vs engine max abs \(error)")
        #expect(error <= 1e-4)
    }

    /// Our own ONNX importer reads the export back: opset, input, output, and every parameter as an initializer.
    @Test func theImporterReadsTheExportBack() throws {
        let export = try ModelExport(package: ExportFixture.resnet)
        let graph = try ONNXLoader().load(Data(try export.onnx()))
        #expect(graph.opset == 14 && graph.irVersion == 7)
        #expect(graph.input.name == "input" && graph.input.dims == [.symbolic("N"), .fixed(1), .fixed(28), .fixed(28)])
        #expect(graph.output.name == "logits")
        #expect(graph.initializers["head.weight"]?.dims == [10, 16])
        #expect(graph.opCounts["Conv", default: 0] >= 5)
    }
}

/// `fleetadapt model export` as a user runs it: the real executable; refusals name the fault and leave no file.
struct ModelExportCLITests {
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ChildProcess.run([try BuiltProducts.path("fleetadapt")] + arguments)
    }

    @Test func exportWritesAFileAndRefusesBadInputLeavingNothing() throws {
        let dir = NSTemporaryDirectory() + "fleetadapt-export-cli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let resnet = dir + "/resnet.fap", mobilenet = dir + "/mobilenet.fap"
        try Data(try ExportFixture.resnet.encode()).write(to: URL(fileURLWithPath: resnet))
        try Data(try ExportFixture.mobilenet.encode()).write(to: URL(fileURLWithPath: mobilenet))
        let positions = ExportFixture.resnet.manifest.blocks
        let v1 = positions[1].variants[1].id

        let out = dir + "/model.onnx"
        let ok = try Self.run(["model", "export", "--package", resnet, "--variants", "blocks.1=\(v1)", "--out", out])
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains("wrote \(out)"))
        let written = try ONNXLoader().load(contentsOf: URL(fileURLWithPath: out))
        #expect(written.output.name == "logits")
        // -1 (after the stem) as the next argument is the value, not an unknown option.
        let stem = dir + "/stem.onnx"
        let split = try Self.run(["model", "export", "--package", resnet, "--split-after-block", "-1", "--part", "device", "--out", stem])
        #expect(split.status == 0 && split.output.contains("device part"), "\(split.output)")
        #expect(try ONNXLoader().load(contentsOf: URL(fileURLWithPath: stem)).output.name == "features")

        // Adapters of the other model, and of the right model with a wrong shape.
        let mobileExport = try ModelExport(package: ExportFixture.mobilenet)
        let foreign = dir + "/foreign.safetensors"
        // The MobileNetV2's adapters share the ResNet's names (differing in shape); its third batch norms have no
        // counterpart at all.
        let mobileAdapters = mobileExport.network.model.namedTensors().filter { $0.key.contains(".adapter.") || $0.key.contains(".bn3.") }
        try Data(SafeTensors.encode(mobileAdapters)).write(to: URL(fileURLWithPath: foreign))
        let resnetExport = try ModelExport(package: ExportFixture.resnet)
        let adapterName = resnetExport.network.adapterTensorNames(position: 0)[0]
        let wrong = dir + "/wrong-shape.safetensors"
        try Data(SafeTensors.encode([adapterName: SafeTensor(floats: [0, 0, 0], shape: [3])])).write(to: URL(fileURLWithPath: wrong))

        let refusals: [([String], String)] = [
            (["--variants", "blocks.9=s0"], "unknown block blocks.9"),
            (["--variants", "blocks.1=s77"], "block blocks.1 has no variant s77"),
            (["--variants", "blocks.1"], "is not block=variant"),
            (["--adapters", foreign], "(adapters of another model?)"),
            (["--adapters", wrong], "\(adapterName) has shape [3]"),
            (["--split-after-block", "\(positions.count)", "--part", "edge"], "split point \(positions.count) is outside the network"),
        ]
        // Usage errors (exit 64), found before the package is read: a split before the stem (given with `=` or as the
        // next argument), a split of the whole, an unknown part.
        let usage: [([String], String)] = [
            (["--split-after-block=-2", "--part", "device"], "--split-after-block: -2 is not a split point"),
            (["--split-after-block", "-2", "--part", "edge"], "--split-after-block: -2 is not a split point"),
            (["--split-after-block", "1"], "--split-after-block needs --part device or --part edge"),
            (["--split-after-block", "1", "--part", "whole"], "--split-after-block needs --part device or --part edge"),
            (["--part", "gpu", "--split-after-block", "1"], "--part: gpu is not whole, device or edge"),
            (["--split-after-block", "one", "--part", "device"], "--split-after-block"),
        ]
        for (arguments, message, status) in refusals.map({ ($0.0, $0.1, Int32(1)) }) + usage.map({ ($0.0, $0.1, Int32(64)) }) {
            let target = dir + "/refused.onnx"
            let r = try Self.run(["model", "export", "--package", resnet, "--out", target] + arguments)
            #expect(r.status == status, "\(arguments): \(r.output)")
            #expect(r.output.contains(message), "\(arguments): \(r.output)")
            #expect(!FileManager.default.fileExists(atPath: target), "\(arguments) left \(target)")
        }
        // Nothing but the inputs and the one good export: no temporary file survived a refusal.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(left == ["foreign.safetensors", "mobilenet.fap", "model.onnx", "resnet.fap", "stem.onnx", "wrong-shape.safetensors"])
    }
}

/// Graph packages (the imported, trained SE-ResNet and tiny MobileNetV2 fixtures) exported: random combinations with
/// TENT-trained adapters, whole and split, equal onnxruntime's logits.
struct GraphPackageExportTests {
    static let fixtures = ONNXExportTests.root.appendingPathComponent("Tests/ONNXTests/Fixtures")

    /// The package and its images (the fixture's 8 reference inputs as pixels, and their mirror images).
    static func build(_ file: String = "se_resnet.eval.onnx") throws -> (ElasticPackage, LabeledImages) {
        let onnx = try ONNXLoader(weights: file.contains("weightless") ? .optional : .required).load(contentsOf: fixtures.appendingPathComponent(file))
        let imported = try ONNXImporter.convert(onnx, input: ONNXInputSpec(channels: 3, height: 32, width: 32), batchNorm: .afterFoldedConvolutions)
        let (tensors, _) = try SafeTensors.decode([UInt8](try Data(contentsOf: fixtures.appendingPathComponent("se_resnet.reference.safetensors"))))
        let x = try #require(tensors["input"]).floats()
        var pixels = x.map { UInt8(max(0, min(255, (($0 * 0.353 + 0.286) * 255).rounded()))) }
        let original = pixels
        for i in 0..<8 { for c in 0..<3 { for y in 0..<32 { for xx in 0..<32 { pixels.append(original[((i * 3 + c) * 32 + y) * 32 + 31 - xx]) } } } }
        let images = LabeledImages(images: pixels, labels: nil, count: 16, channels: 3, height: 32, width: 32)
        let pre = PackageManifest.InputPreprocessing(resize: .init(shorterSide: nil, width: 32, height: 32), crop: nil, channels: "rgb",
                                                     mean: [0.286, 0.286, 0.286], std: [0.353, 0.353, 0.353])
        let batch = GraphPackageBuilder.modelTensor(images, Array(0..<16), pre)
        try ONNXImporter.estimateStatistics(imported, on: [batch])
        let classes = imported.graph.forward([batch], store: imported.store, training: false, tape: nil)[0].shape[1]
        var options = ElasticBuilder.Options()
        options.sparsities = [0, 0.5]
        options.distillationSteps = 5
        options.distillationBatchSize = 8
        options.latencyRuns = 1
        options.warmupRuns = 0
        options.calibrationCombinations = 1
        options.validationCombinations = 1
        let (package, _) = try GraphPackageBuilder.build(
            .init(graph: imported.graph, store: imported.store, valueShapes: imported.valueShapes, description: file),
            name: "export-graph", preprocessing: pre, classNames: (0..<classes).map { "class \($0)" }, sourceImages: images, validation: nil,
            dataset: "fixture images", options: options)
        return (package, images)
    }

    @Test(arguments: ["se_resnet.eval.onnx", "mobilenet_v2_tiny.eval.onnx"])
    func graphPackageCombinationsMatchOnnxruntime(_ file: String) throws {
        let (package, images) = try Self.build(file)
        var rng = SeededRandom(seed: 31)
        let x = images.tensor(Array(0..<8))
        for round in 0..<2 {
            let export = try ModelExport(package: package)
            try export.compose(ONNXExportTests.randomCombination(export.network, &rng))
            _ = Adaptation.adapt(export.network.model, on: images, loss: .tent, steps: 3, batchSize: 8, learningRate: 5e-3,
                                 trainable: .adaptersAndNorms, seed: UInt64(round))
            let adapterMax = export.network.model.namedTensors().filter { $0.key.contains(".adapter.") }.values
                .map { (try? $0.floats().map(abs).max()) ?? 0 }.compactMap { $0 }.max() ?? 0
            #expect(adapterMax > 0, "the adapters trained away from zero")
            let expected = export.network.model.forward(x, training: false).data
            let whole = ONNXExportTests.temp(".onnx")
            defer { try? FileManager.default.removeItem(atPath: whole) }
            try ModelExport.writeAtomically(try export.onnx(), to: whole)
            let (logits, report) = try ONNXExportTests.onnxruntime([whole], x)
            let error = ONNXExportTests.maxAbs(logits, expected)
            let scale = expected.map(abs).max() ?? 0
            print("graph \(file) \(export.network.choiceIDs.joined(separator: ",")): onnxruntime vs engine max abs \(error) (logits up to \(scale))")
            #expect(error <= 1e-4)
            #expect(report.checker == "full_check passed" && report.inputDims == ["N", "3", "32", "32"] && report.outputShape == [8, package.manifest.architecture.classes])
            #expect(report.metadata["class_names"]?.contains("class 9") == true && report.metadata["fleetadapt.architecture"] == "graph")

            let k = Int(rng.next() % UInt64(package.manifest.blocks.count + 1)) - 1
            let devicePart = ONNXExportTests.temp(".device.onnx"), edgePart = ONNXExportTests.temp(".edge.onnx")
            defer { try? FileManager.default.removeItem(atPath: devicePart); try? FileManager.default.removeItem(atPath: edgePart) }
            try ModelExport.writeAtomically(try export.onnx(part: .device, splitAfterBlock: k), to: devicePart)
            try ModelExport.writeAtomically(try export.onnx(part: .edge, splitAfterBlock: k), to: edgePart)
            let splitError = ONNXExportTests.maxAbs(try ONNXExportTests.onnxruntime([devicePart, edgePart], x).logits, expected)
            print("graph \(file) split after block \(k): device then edge vs engine max abs \(splitError)")
            #expect(splitError <= 1e-4)
        }
    }
}
