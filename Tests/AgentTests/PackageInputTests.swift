@testable import Agent
import ElasticModel
import FleetAPI
import Foundation
import ImageIO
import Learning
import ONNX
@testable import ONNXImport
import TestSupport
import Testing

/// A package whose manifest declares a resize and a centre crop: the builder (reading its source folder), the agent
/// (its local image folder) and the agent's inference service (an image in a request; the spool watcher calls the
/// same) make bit-identical tensors of the same files, and records that cannot give the network's input are refused.
@Suite struct PackageInputTests {
    /// Shorter side to 36, then the centre 32×32: torchvision's `Resize(36)`, `CenterCrop(32)`.
    static let preprocessing = PackageManifest.InputPreprocessing(
        resize: .init(shorterSide: 36, width: nil, height: nil), crop: .init(width: 32, height: 32), channels: "rgb",
        mean: [0.286, 0.286, 0.286], std: [0.353, 0.353, 0.353])
    static let spec = ONNXInputSpec(channels: 3, height: 32, width: 32)
    static let onnx = GraphPackageJobTests.fixtures.appendingPathComponent("se_resnet.eval.onnx").path

    /// 30 RGB PNGs of three sizes and aspect ratios (none 32×32), scaled from the SE-ResNet fixture's images.
    static func folder() throws -> (dir: String, files: [String]) {
        let images = try GraphPackageJobTests.images()
        let dir = try ImageFiles.temporaryDirectory("resize-crop")
        let sizes = [(44, 36), (36, 52), (40, 40)]
        var files: [String] = []
        for i in 0..<30 {
            let (w, h) = sizes[i % 3]
            var pixels = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 {
                pixels[(y * w + x) * 3 + c] = images.images[((i * 3 + c) * 32 + y * 32 / h) * 32 + x * 32 / w]
            } } }
            let path = "\(dir)/\(String(format: "%03d", i)).png"
            try ImageFiles.write(PNGFile.rgb(width: w, height: h, pixels: pixels), to: path)
            files.append(path)
        }
        return (dir, files)
    }

    static var options: ElasticBuilder.Options { GraphPackageJobTests.options }

    @Test func theBuilderTheAgentAndItsServiceMakeBitIdenticalTensorsWithResizeAndCrop() throws {
        let (dir, files) = try Self.folder()
        let path = NSTemporaryDirectory() + "fleetadapt-resize-crop-\(getpid())-\(UUID().uuidString.prefix(6)).fap"
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: path)
        }
        // The package, built from the folder by `model build --onnx … --resize 36 --crop 32`'s code path.
        let (package, _) = try ONNXPackageBuild(onnxPath: Self.onnx, input: Self.spec, preprocessing: Self.preprocessing, sourceImages: dir,
                                                options: Self.options).run(name: "resize-crop")
        try Data(try package.encode()).write(to: URL(fileURLWithPath: path))
        let manifest = try ElasticPackage.read(path: path).manifest
        #expect(manifest.preprocessing == Self.preprocessing)

        // What the builder distilled and calibrated on.
        let built = try ONNXPackageBuild.readFolder(dir, shape: [3, 32, 32], Self.preprocessing, newest: 2048, log: { _ in }).images
        #expect(built.count == 30)
        let all = Array(0..<30)
        let builderTensor = built.tensor(all)

        // The agent's local data, read for a job on that package.
        let local = LocalImages(directory: dir, window: 2048, watch: true, log: { _ in })
        let agent = try local.images(for: PackageInput(manifest: manifest)).data
        #expect(agent.images == built.images)
        #expect(agent.tensor(all).data.map(\.bitPattern) == builderTensor.data.map(\.bitPattern))

        // The service's input for each file sent as an image (the spool watcher's path is the same `PackageInput.tensor`).
        let net = try InferenceService.build(package: path, modelID: UUID(), variants: [], configVersion: nil, partition: nil, tensors: [:],
                                             generation: 1, edge: nil, log: { _ in })
        let per = 3 * 32 * 32
        for (i, file) in files.enumerated() {
            let served = try PredictInput.image([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))), field: "items[0].image", net)
            #expect(served.shape == [1, 3, 32, 32])
            #expect(served.data.map(\.bitPattern) == builderTensor.data[(i * per)..<((i + 1) * per)].map(\.bitPattern), "\(file)")
        }
        // The model view states the manifest's record.
        #expect(net.input.preprocessing.resize == .shorterSide(36) && net.input.preprocessing.crop == .init(width: 32, height: 32))

        // And that geometry is the manifest's (shorter side 36, centre 32×32), not a plain resize to 32×32.
        let first = try ImageDecoder.decode(file: files[0])
        func bytes(_ p: Preprocessing) throws -> [UInt8] { try p.apply(first).data.map { UInt8(max(0, min(255, $0.rounded()))) } }
        #expect(built.subset(0..<1).images == (try bytes(Preprocessing(resize: .shorterSide(36), crop: .init(width: 32, height: 32), scaleToUnit: false))))
        #expect(built.subset(0..<1).images != (try bytes(Preprocessing(resize: .size(width: 32, height: 32), scaleToUnit: false))))
    }

    static func refusal(_ edit: (inout PackageManifest.InputPreprocessing) -> Void) -> (field: String, message: String)? {
        var p = preprocessing
        edit(&p)
        do {
            _ = try PackageInput(inputShape: [3, 32, 32], preprocessing: p)
            return nil
        } catch {
            if case .invalidManifest(let field, let message) = error { return (field, message) }
            return ("?", "\(error)")
        }
    }

    @Test func recordsThatCannotGiveTheInputAreRefusedNamingTheField() throws {
        #expect(Self.refusal { _ in } == nil)
        let wide = Self.refusal { $0.crop = .init(width: 40, height: 32) }
        #expect(wide?.field == "preprocessing.crop.width" && wide?.message == "40 is wider than the resized image (36)", "\(String(describing: wide))")
        #expect(Self.refusal { $0.crop = .init(width: 32, height: 37) }?.field == "preprocessing.crop.height")
        let zero = Self.refusal { $0.resize = .init(shorterSide: 0, width: nil, height: nil) }
        #expect(zero?.field == "preprocessing.resize.shorter_side" && zero?.message == "must be between 1 and 4096, got 0", "\(String(describing: zero))")
        #expect(Self.refusal { $0.crop = .init(width: 0, height: 32) }?.field == "preprocessing.crop.width")
        #expect(Self.refusal { $0.resize = .init(shorterSide: nil, width: 32, height: 0); $0.crop = nil }?.field == "preprocessing.resize.height")
        #expect(Self.refusal { $0.resize = .init(shorterSide: nil, width: 36, height: 40); $0.crop = nil }?.field == "preprocessing.resize")
        #expect(Self.refusal { $0.crop = .init(width: 28, height: 28) }?.field == "preprocessing.crop")
        #expect(Self.refusal { $0.crop = nil }?.field == "preprocessing.resize.shorter_side", "36 without a crop cannot give 32×32")
        #expect(Self.refusal { $0.resize = .init(shorterSide: 36, width: 36, height: 36) }?.field == "preprocessing.resize")

        // A package carrying such a record is refused when read (no agent runs it), and a build asked for one stops
        // before reading any image.
        let images = try GraphPackageJobTests.images()
        let path = try GraphPackageJobTests.packagePath(images)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let package = try ElasticPackage.read(path: path)
        var manifest = package.manifest
        manifest.preprocessing?.resize = .init(shorterSide: 36, width: nil, height: nil)
        manifest.preprocessing?.crop = .init(width: 40, height: 40)
        let bytes = try ElasticPackage(manifest: manifest, tensors: package.tensors).encode()
        #expect(throws: PackageError.invalidManifest(field: "preprocessing.crop.width", message: "40 is wider than the resized image (36)")) {
            _ = try ElasticPackage.decode(bytes)
        }
        var bad = Self.preprocessing
        bad.crop = .init(width: 40, height: 40)
        #expect(throws: PackageError.invalidManifest(field: "preprocessing.crop.width", message: "40 is wider than the resized image (36)")) {
            _ = try ONNXPackageBuild(onnxPath: Self.onnx, input: Self.spec, preprocessing: bad, sourceImages: "/nonexistent", options: Self.options)
                .run(name: "bad")
        }
    }
}
