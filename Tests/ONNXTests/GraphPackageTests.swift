import Foundation
import Testing
import ElasticModel
import ImageIO
import Learning
@testable import ONNX
@testable import ONNXImport

/// An imported ONNX classifier as an elastic package: built from the committed trained fixtures on images made
/// from their reference inputs, its original combination reproduces PyTorch's logits, derived variants are
/// distilled, adapters and batch-norm modes behave as in the built-in families, the network splits exactly, the
/// package round-trips, and hostile graph manifests are refused naming the field.
@Suite struct GraphPackageTests {
    static let spec = ONNXInputSpec(channels: 3, height: 32, width: 32)
    /// The fixtures' preprocessing (fixtures.json): Fashion-MNIST padded to 32×32 as RGB, mean 0.286, std 0.353.
    static let preprocessing = PackageManifest.InputPreprocessing(resize: .init(shorterSide: nil, width: 32, height: 32), crop: nil,
                                                                  channels: "rgb", mean: [0.286, 0.286, 0.286], std: [0.353, 0.353, 0.353])

    /// 64 images: the 8 reference inputs as pixels, then shifted and mirrored copies of them with seeded noise.
    static func images(_ file: String) throws -> LabeledImages {
        let (x, _) = try ONNXImportTests.reference(file)
        let per = 3 * 32 * 32
        var pixels = x.data.map { UInt8(max(0, min(255, (($0 * 0.353 + 0.286) * 255).rounded()))) }
        var rng = SeededRandom(seed: 7)
        for k in 8..<64 {
            let src = k % 8, shift = k / 8 % 4, mirror = k % 3 == 0
            for c in 0..<3 {
                for y in 0..<32 {
                    for xx in 0..<32 {
                        let sx = mirror ? 31 - xx : (xx + shift) % 32
                        let v = Int(pixels[src * per + (c * 32 + y) * 32 + sx]) + Int(rng.next() % 21) - 10
                        pixels.append(UInt8(max(0, min(255, v))))
                    }
                }
            }
        }
        return LabeledImages(images: pixels, labels: nil, count: 64, channels: 3, height: 32, width: 32)
    }

    static var options: ElasticBuilder.Options {
        var o = ElasticBuilder.Options()
        o.sparsities = [0, 0.5]
        o.distillationSteps = 40
        o.distillationBatchSize = 16
        o.latencyRuns = 2
        o.warmupRuns = 1
        o.calibrationCombinations = 2
        o.validationCombinations = 2
        return o
    }

    struct Built: Sendable {
        var bytes: [UInt8]
        var difference: Float
        var blocks: Int
        var seconds: Double
    }

    static func build(_ file: String) throws -> Built {
        let started = Date()
        let onnx = try ONNXLoader().load(contentsOf: Fixtures.url(file))
        let imported = try ONNXImporter.convert(onnx, input: spec, batchNorm: .afterFoldedConvolutions)
        let images = try images(file)
        try ONNXImporter.estimateStatistics(imported, on: [GraphPackageBuilder.modelTensor(images, Array(0..<64), preprocessing)])
        let (package, report) = try GraphPackageBuilder.build(
            .init(graph: imported.graph, store: imported.store, valueShapes: imported.valueShapes, description: file),
            name: "test", preprocessing: preprocessing, classNames: nil, sourceImages: images, validation: nil, dataset: "test images",
            options: options)
        return Built(bytes: try package.encode(), difference: report.originalMaxAbsDifference, blocks: report.blocks.count,
                     seconds: Date().timeIntervalSince(started))
    }

    static let seResNet = Result { try build("se_resnet.eval.onnx") }
    static let mobileNet = Result { try build("mobilenet_v2_tiny.eval.onnx") }
    static func built(_ file: String) throws -> Built { try (file.hasPrefix("se_resnet") ? seResNet : mobileNet).get() }

    static let files = ["se_resnet.eval.onnx", "mobilenet_v2_tiny.eval.onnx"]

    @Test(arguments: files)
    func originalCombinationReproducesTheReferenceLogits(file: String) throws {
        let built = try Self.built(file)
        let package = try ElasticPackage.decode(built.bytes)
        let net = try package.network()
        let m = package.manifest
        print("graph package \(file): \(built.blocks) blocks, variants \(m.blocks.map { $0.variants.map(\.id).joined(separator: "/") }), "
              + "\(m.combinationCount) combinations, \(built.bytes.count) bytes, built in \(String(format: "%.1f", built.seconds)) s")
        #expect(m.architecture.family == .graph && m.accuracyMetric == "teacher-agreement" && m.preprocessing == Self.preprocessing)
        #expect(m.accuracy.baseAccuracy == 1, "the original agrees with itself")
        #expect(built.blocks == (file.hasPrefix("se_resnet") ? 3 : 7) || built.blocks > 1)
        #expect(built.difference < 1e-4)
        // The engine's tensor of the fixture's pixels is the reference input (the fixture's mean/std are the engine's).
        let (x, reference) = try ONNXImportTests.reference(file)
        net.compose([Int](repeating: 0, count: net.positions.count))
        let logits = net.model.forward(x, training: false)
        let diff = ONNXImportTests.maxAbs(logits, reference)
        print("graph package \(file): original combination max |logits - PyTorch| = \(diff)")
        #expect(diff < 1e-4)
        // Round trip: the same manifest and tensors, and the same bytes again.
        #expect(try package.encode() == built.bytes)
        let again = try ElasticPackage.decode(try package.encode())
        #expect(again.manifest == m && again.tensors.keys.sorted() == package.tensors.keys.sorted())
    }

    @Test(arguments: files)
    func prunedCombinationRunsAndWasDistilled(file: String) throws {
        let package = try ElasticPackage.decode(try Self.built(file).bytes)
        let net = try package.network()
        let m = package.manifest
        var distilled = 0
        for b in m.blocks {
            for v in b.variants where v.id == "s50" {
                let d = try #require(v.distillation)
                #expect(d.steps == Self.options.distillationSteps)
                #expect(d.mseAfter < d.mseBefore, "\(b.name).\(v.id): \(d.mseBefore) → \(d.mseAfter)")
                distilled += 1
            }
        }
        #expect(distilled >= 2)
        // Every position at its most pruned variant (s50, else skip, else s0).
        let choice = m.blocks.map { b in b.variants.firstIndex { $0.id == "s50" } ?? b.variants.firstIndex { $0.id == "skip" } ?? 0 }
        net.compose(choice)
        let (x, reference) = try ONNXImportTests.reference(file)
        let y = net.model.forward(x, training: false)
        #expect(y.shape == reference.shape && y.data.allSatisfy(\.isFinite))
        #expect(ONNXImportTests.maxAbs(y, reference) > 1e-4, "a pruned combination computes something else")
        // Skip variants of residual blocks are there.
        #expect(m.blocks.contains { $0.variants.contains { $0.id == "skip" } })
    }

    /// TENT with adapters only: adapters change, every other parameter and every running statistic stays (graph
    /// batch norms honour frozen statistics); with norms, running statistics move; bn-stats re-estimates them.
    @Test func adaptersAttachAndTENTChangesOnlyAdaptersAndNorms() throws {
        let file = "se_resnet.eval.onnx"
        let package = try ElasticPackage.decode(try Self.built(file).bytes)
        let net = try package.network()
        let images = try Self.images(file)
        let before = net.model.namedTensors()
        let adapters = Set(net.positions.indices.flatMap { net.adapterTensorNames(position: $0) })
        #expect(!adapters.isEmpty)
        Adaptation.adapt(net.model, on: images, loss: .tent, steps: 4, batchSize: 16, learningRate: 1e-2, trainable: .adapters)
        let after = net.model.namedTensors()
        let changed = Set(before.keys.filter { before[$0] != after[$0] })
        #expect(!changed.isEmpty && changed.isSubset(of: adapters), "changed: \(changed.subtracting(adapters).sorted().prefix(5))")

        let norms = Set(net.model.allNorms.flatMap { bn in ["weight", "bias", "running_mean", "running_var"].map { "\(bn.name).\($0)" } })
        #expect(norms.count > 8 && norms.isSubset(of: Set(before.keys)))
        Adaptation.adapt(net.model, on: images, loss: .tent, steps: 4, batchSize: 16, learningRate: 1e-2, trainable: .adaptersAndNorms)
        let afterNorms = net.model.namedTensors()
        let changed2 = Set(after.keys.filter { after[$0] != afterNorms[$0] })
        #expect(changed2.isSubset(of: adapters.union(norms)), "changed: \(changed2.subtracting(adapters.union(norms)).sorted().prefix(5))")
        #expect(changed2.contains { $0.hasSuffix("running_mean") } && changed2.contains { $0.hasPrefix("stem.") })

        Adaptation.adapt(net.model, on: images, loss: .bnStats, steps: 2, batchSize: 32)
        let afterStats = net.model.namedTensors()
        let changed3 = Set(afterNorms.keys.filter { afterNorms[$0] != afterStats[$0] })
        #expect(!changed3.isEmpty && changed3.allSatisfy { $0.hasSuffix("running_mean") || $0.hasSuffix("running_var") })
    }

    /// The network split after every block (prefix then suffix) equals the whole, and so do the graphs the edge and
    /// the exporter lower it to.
    @Test(arguments: files)
    func splitNetworkEqualsTheWhole(file: String) throws {
        let net = try ElasticPackage.decode(try Self.built(file).bytes).network()
        var rng = SeededRandom(seed: 3)
        net.compose(net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) })
        let (x, _) = try ONNXImportTests.reference(file)
        let whole = net.model.forward(x, training: false)
        let lowered = InferenceGraph(try net.model.graph(), store: net.model.store).forward([x])[0]
        #expect(ONNXImportTests.maxAbs(whole, lowered) < 1e-5)
        for k in -1..<net.positions.count {
            let h = net.model.forwardPrefix(x, through: k)
            #expect(Array(h.shape.dropFirst()) == net.model.featureShape(after: k))
            #expect(net.model.forwardSuffix(h, after: k) == whole)
            let suffix = InferenceGraph(try net.model.graph(after: k), store: net.model.store).forward([h])[0]
            #expect(ONNXImportTests.maxAbs(suffix, whole) < 1e-5, "split after \(k)")
        }
    }

    /// A BGR model with its own mean and std: the package takes the engine's RGB tensor and computes what the model
    /// computes on its own input (made here by hand: model channel k reads image channel 2 − k).
    @Test func aBGRModelWithItsOwnMeanAndStdTakesTheEngineTensor() throws {
        let file = "se_resnet.eval.onnx"
        let imported = try ONNXImporter.convert(try ONNXLoader().load(contentsOf: Fixtures.url(file)), input: Self.spec,
                                                batchNorm: .afterFoldedConvolutions)
        let images = try Self.images(file)
        var pre = Self.preprocessing
        pre.channels = "bgr"
        pre.mean = [0.3, 0.25, 0.2]
        pre.std = [0.2, 0.3, 0.4]
        var options = Self.options
        options.distillationSteps = 2
        let (package, report) = try GraphPackageBuilder.build(
            .init(graph: imported.graph, store: imported.store, valueShapes: imported.valueShapes, description: file),
            name: "bgr", preprocessing: pre, classNames: nil, sourceImages: images, validation: nil, dataset: "test images", options: options)
        var manual: [Float] = []
        for i in 0..<8 { for k in 0..<3 { for p in 0..<1024 {
            manual.append((Float(images.images[i * 3072 + (2 - k) * 1024 + p]) / 255 - pre.mean[k]) / pre.std[k])
        } } }
        let expected = InferenceGraph(imported.graph, store: imported.store).forward([Tensor(shape: [8, 3, 32, 32], data: manual)])[0]
        let net = try ElasticPackage.decode(try package.encode()).network()
        let got = net.model.forward(images.tensor(Array(0..<8)), training: false)
        let diff = ONNXImportTests.maxAbs(got, expected)
        print("bgr graph package: max |logits - model on its own input| = \(diff)")
        #expect(diff < 1e-4 && report.originalMaxAbsDifference < 1e-4)
        #expect(package.manifest.preprocessing?.channels == "bgr")
    }

    // MARK: Hostile manifests

    static func refused(_ edit: (inout PackageManifest, inout [String: SafeTensor]) -> Void) throws -> PackageError? {
        let package = try ElasticPackage.decode(try built("se_resnet.eval.onnx").bytes)
        var manifest = package.manifest, tensors = package.tensors
        edit(&manifest, &tensors)
        let bytes = try ElasticPackage(manifest: manifest, tensors: tensors).encode()
        do {
            _ = try ElasticPackage.decode(bytes)
            return nil
        } catch {
            return error
        }
    }

    static func field(_ e: PackageError?) -> String? {
        if case .invalidManifest(let field, _)? = e { return field }
        return nil
    }

    @Test func hostileGraphManifestsAreRefusedNamingTheField() throws {
        let unknown = try Self.refused { m, _ in m.architecture.graph!.blocks[0][0].nodes[0].op = "leaky_relu" }
        #expect(Self.field(unknown) == "architecture.graph.blocks[0][0].nodes[0].op", "\(String(describing: unknown))")

        let huge = try Self.refused { m, _ in
            let k = m.architecture.graph!.blocks[1][0].nodes.firstIndex { $0.op == "conv" }!
            m.architecture.graph!.blocks[1][0].nodes[k].out = 1 << 40
        }
        #expect(Self.field(huge)?.hasPrefix("architecture.graph.blocks[1][0].nodes[") == true && Self.field(huge)?.hasSuffix("].out") == true,
                "\(String(describing: huge))")

        let wide = try Self.refused { m, _ in m.architecture.inputShape = [3, 100_000, 100_000] }
        #expect(Self.field(wide) == "architecture.input_shape", "\(String(describing: wide))")

        let cycle = try Self.refused { m, _ in
            let n = m.architecture.graph!.stem.nodes.count
            m.architecture.graph!.stem.nodes[1].inputs = [n]
        }
        #expect(Self.field(cycle) == "architecture.graph.stem.nodes[1].inputs[0]", "\(String(describing: cycle))")

        let missing = try Self.refused { _, t in
            let name = t.keys.sorted().first { $0.hasPrefix("blocks.1.") && $0.hasSuffix("running_var") }!
            t.removeValue(forKey: name)
        }
        guard case .invalidWeights(let message)? = missing else { Issue.record("expected invalid weights, got \(String(describing: missing))"); return }
        #expect(message.contains("weights lack blocks.1."), "\(message)")

        let shape = try Self.refused { m, _ in m.blocks[0].outChannels += 1 }
        #expect(Self.field(shape) == "blocks[0]", "\(String(describing: shape))")

        let count = try Self.refused { m, _ in m.architecture.graph!.blocks[0].removeLast() }
        #expect(Self.field(count) == "architecture.graph.blocks[0]", "\(String(describing: count))")

        let classes = try Self.refused { m, _ in m.classNames = ["one"] }
        #expect(Self.field(classes) == "class_names", "\(String(describing: classes))")

        let std = try Self.refused { m, _ in m.preprocessing!.std = [0, 1, 1] }
        #expect(Self.field(std) == "preprocessing.std", "\(String(describing: std))")
    }
}

/// `ONNXPackageBuild` end to end from image folders on disk: PNGs written here (a minimal encoder: stored deflate
/// blocks), decoded by ImageIO, a labelled ImageFolder for accuracy and class names.
@Suite struct ONNXPackageBuildTests {
    /// An 8-bit RGB PNG of `pixels` (HWC).
    static func png(width: Int, height: Int, rgb pixels: [UInt8]) -> [UInt8] {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        func crc(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return c ^ 0xFFFF_FFFF
        }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be32(UInt32(data.count)) + body + be32(crc(body))
        }
        var raw: [UInt8] = []
        for y in 0..<height { raw.append(0); raw += pixels[(y * width * 3)..<((y + 1) * width * 3)] }
        var z: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65_535, raw.count - offset)
            let final: UInt8 = offset + n == raw.count ? 1 : 0
            z += [final, UInt8(n & 255), UInt8(n >> 8), UInt8(~n & 255), UInt8((~n >> 8) & 255)]
            z += raw[offset..<(offset + n)]
            offset += n
        } while offset < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65_521; b = (b + a) % 65_521 }
        z += be32(b << 16 | a)
        let header = be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", z) + chunk("IEND", [])
    }

    @Test func buildsFromImageFoldersWithLabelsAndClassNames() throws {
        let file = "se_resnet.eval.onnx"
        let images = try GraphPackageTests.images(file)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("onnxpkg-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Labels: the imported network's own answers for the 8 reference images, kept by their copies.
        let (x, reference) = try ONNXImportTests.reference(file)
        _ = x
        let labels = (0..<8).map { i in (0..<10).max { reference.data[i * 10 + $0] < reference.data[i * 10 + $1] }! }
        for c in 0..<10 { try FileManager.default.createDirectory(atPath: "\(root)/val/c\(c)", withIntermediateDirectories: true) }
        try FileManager.default.createDirectory(atPath: "\(root)/source", withIntermediateDirectories: true)
        for i in 0..<images.count {
            let per = 3 * 32 * 32
            var hwc = [UInt8](repeating: 0, count: per)
            for c in 0..<3 { for p in 0..<1024 { hwc[p * 3 + c] = images.images[i * per + c * 1024 + p] } }
            let bytes = Data(Self.png(width: 32, height: 32, rgb: hwc))
            try bytes.write(to: URL(fileURLWithPath: "\(root)/source/\(i).png"))
            if i % 8 == i || i % 3 != 0 { try bytes.write(to: URL(fileURLWithPath: "\(root)/val/c\(labels[i % 8])/\(i).png")) }
        }
        // The PNGs decode to exactly the pixels written.
        let decoded = try ImageDecoder.decode(file: "\(root)/source/5.png")
        #expect(decoded.width == 32 && decoded.channels == 3)

        var options = GraphPackageTests.options
        options.distillationSteps = 10
        let build = ONNXPackageBuild(onnxPath: Fixtures.url(file).path, input: GraphPackageTests.spec, preprocessing: GraphPackageTests.preprocessing,
                                     sourceImages: "\(root)/source", validationImages: "\(root)/val", options: options)
        let (package, report) = try build.run(name: "folders")
        let m = package.manifest
        #expect(m.accuracyMetric == "accuracy" && m.classNames == (0..<10).map { "c\($0)" })
        #expect(m.provenance.distillationImages == 64)
        #expect(report.originalMaxAbsDifference < 1e-4)
        // The folder's labels are the original network's answers on the originals (copies are noisy and shifted).
        #expect(m.accuracy.baseAccuracy > 0.5)
        let net = try ElasticPackage.decode(try package.encode()).network()
        #expect(ONNXImportTests.maxAbs(net.model.forward(x, training: false), reference) < 1e-4)

        // Bad inputs are refused naming the option.
        var wrong = build
        wrong.preprocessing.mean = [0.5]
        #expect(throws: ONNXPackageBuild.Failure.self) { try wrong.run(name: "x") }
        var empty = build
        empty.sourceImages = "\(root)/val/c0/nothing"
        #expect(throws: (any Error).self) { try empty.run(name: "x") }
    }
}
