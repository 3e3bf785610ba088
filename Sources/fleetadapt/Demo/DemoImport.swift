import ArgumentParser
import Crypto
import ElasticModel
import Foundation
import ImageIO
import ONNXImport

/// `demo --onnx`: the fleet on your own classifier instead of the built-in one. The package is built from the ONNX
/// file and the image folders (as `model build --onnx` does, with settings sized for a demo), and each device's
/// local data is its share of --device-images, copied as files (class folders kept, so accuracy is reported).
struct DemoImportOptions: ParsableArguments {
    @Option(help: "Your ONNX classifier: the demo builds its package (once per file and flags) and runs the fleet on it.")
    var onnx: String?

    @Option(help: "With --onnx: your unlabeled JPEG/PNG images (recursive) the variants are distilled on.")
    var sourceImages: String?

    @Option(help: "With --onnx: labelled images (one folder per class) to measure accuracy on; without, agreement with your model.")
    var valImages: String?

    @Option(help: "With --onnx: the target domain's images (a folder, or one folder per class), shared out among the devices (--corruption does not apply).")
    var deviceImages: String?

    @Option(help: "With --onnx: the network's input C×H×W, e.g. 3x32x32.")
    var input: String?

    @Option(help: "With --onnx: per-channel mean after scaling pixels to [0, 1], comma-separated.")
    var mean: Numbers?

    @Option(help: "With --onnx: per-channel std after scaling pixels to [0, 1], comma-separated.")
    var std: Numbers?

    @Option(help: "With --onnx: resize the shorter side to this before --crop (default: resize to exactly the input's H×W).")
    var resize: Int?

    @Option(help: "With --onnx: centre crop to this square side after --resize.")
    var crop: Int?

    @Option(help: "With --onnx: channel order the network expects: rgb, bgr or gray.")
    var channels: String?

    func validate() throws {
        guard onnx != nil else {
            guard sourceImages == nil, valImages == nil, deviceImages == nil, input == nil else {
                throw ValidationError("--source-images, --val-images, --device-images and --input go with --onnx")
            }
            return
        }
        guard sourceImages != nil, deviceImages != nil, input != nil else {
            throw ValidationError("--onnx needs --source-images, --device-images and --input (e.g. --input 3x32x32)")
        }
    }

    /// The build of the package, its file name in the work directory (keyed by the ONNX file and the flags, so a
    /// changed model or preprocessing builds anew), and the devices' image folder.
    func imported() throws -> DemoFleet.Imported? {
        guard let onnx, let sourceImages, let deviceImages, let input else { return nil }
        let (spec, preprocessing) = try ModelBuildCommand.importInput(input: input, channels: channels, mean: mean, std: std,
                                                                      resize: resize, crop: crop)
        guard let model = FileManager.default.contents(atPath: onnx) else { throw ValidationError("--onnx: cannot read \(onnx)") }
        var hasher = SHA256()
        hasher.update(data: model)
        hasher.update(data: Data([sourceImages, valImages ?? "", input, "\(preprocessing)", "\(DemoFleet.importOptions)"].joined(separator: "\n").utf8))
        let key = hasher.finalize().prefix(6).map { String(format: "%02x", $0) }.joined()
        let name = ((onnx as NSString).lastPathComponent as NSString).deletingPathExtension
        let build = ONNXPackageBuild(onnxPath: onnx, input: spec, preprocessing: preprocessing, sourceImages: sourceImages,
                                     maxSourceImages: 1000, validationImages: valImages, maxValidationImages: 300,
                                     options: DemoFleet.importOptions)
        return DemoFleet.Imported(build: build, name: name, file: "imported-\(name)-\(key).fap", deviceImages: deviceImages)
    }
}

extension DemoFleet {
    struct Imported {
        var build: ONNXPackageBuild
        var name: String
        var file: String
        var deviceImages: String
    }

    /// The demo's build of an imported model: two widths and the skip per block, fewer distillation steps and
    /// measured combinations than `model build`, so a ResNet-18 at 3×32×32 builds in minutes on two cores.
    static var importOptions: ElasticBuilder.Options {
        var options = ElasticBuilder.Options()
        options.sparsities = [0, 0.5]
        options.distillationSteps = 80
        options.latencyRuns = 10
        options.calibrationCombinations = 24
        options.validationCombinations = 12
        options.frontierCombinations = 8
        return options
    }

    /// 1 (imported). Builds the package from the ONNX file once; reused while it verifies.
    func ensureImportedPackage(_ imported: Imported) throws {
        try FileManager.default.createDirectory(atPath: settings.workDir, withIntermediateDirectories: true)
        guard (try? ElasticPackage.read(path: modelPath)) == nil else { return }
        say("building the elastic package from \(imported.build.onnxPath) on your images (once; reused next time)…")
        let started = Date()
        var bars: [ElasticBuilder.Phase: ProgressBar] = [:]
        let (package, report) = try imported.build.run(name: imported.name, log: { say("  " + $0) }) { phase, done, total in
            let b = bars[phase] ?? ProgressBar(phase.rawValue)
            bars[phase] = b
            b.update(done, of: total)
        }
        let bytes = try package.encode()
        try Data(bytes).write(to: URL(fileURLWithPath: modelPath))
        let m = package.manifest
        PackageTables.printVariants(m, undistilled: report.undistilledAccuracy)
        PackageTables.printSummary(m, bytes: bytes)
        let variants = m.blocks.reduce(0) { $0 + $1.variants.count }
        say(String(format: "package: %d blocks, %d variants, %d combinations, base %@ %.3f, estimator error %.3f mean / %.3f max "
                   + "(%d held-out combinations); original vs ONNX max |Δlogits| %.2g; built in %.0f s",
                   m.blocks.count, variants, m.combinationCount, (m.accuracyMetric ?? "accuracy") as NSString, m.accuracy.baseAccuracy,
                   m.accuracy.meanAbsError, m.accuracy.maxAbsError, m.accuracy.validation.count, report.originalMaxAbsDifference,
                   Date().timeIntervalSince(started)))
    }

    /// Device `index`'s local data: every `agents`-th image of --device-images from `index` on, copied with its
    /// relative path (class folders kept); whatever was in the folder before is removed first.
    func writeDeviceImages(_ imported: Imported, index: Int, to dir: String) throws {
        let folder = try ImageFolder.scan(imported.deviceImages, log: { say("  " + $0) })
        let mine = folder.entries.enumerated().filter { $0.offset % settings.agents == index }.prefix(Self.imagesPerDevice).map(\.element)
        guard !mine.isEmpty else { throw ValidationError("--device-images: no images for device \(index + 1) in \(imported.deviceImages)") }
        try? FileManager.default.removeItem(atPath: dir)
        for entry in mine {
            let target = dir + "/" + entry.relativePath
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: entry.path, toPath: target)
        }
    }
}
