import ArgumentParser
import CommandSupport
import ElasticModel
import Foundation
import Learning
import ONNX
import ONNXImport

struct ModelBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an elastic model package: blocks × variants × adapters, distilled and profiled.",
        discussion: HelpText.reflow("""
            From one trained base model (trained here on clean Fashion-MNIST, or loaded with --base):
              1. detects its blocks on the dataflow graph (single-entry single-exit parts with convolutions),
              2. derives variants of each block by L1-norm filter pruning at --sparsities, plus `skip` where the
                 block is residual (identity, or only its projection shortcut where the shape changes),
              3. distils every derived block against the original block's output (MSE on the teacher's features),
              4. adds one zero-initialised residual adapter per position, shared by all its variants,
              5. profiles every variant (FLOPs, bytes, peak activations, output tensor, median latency here),
              6. fits the accuracy estimators (additive, pairwise, logistic, logistic-additive) on measured
                 random combinations, keeps the best the planner searches exactly (additive or logistic-additive)
                 by cross-validation, reports each one's error on other random combinations and measures the
                 combinations on the estimated accuracy–latency frontier,
              7. writes one package file (ustar: manifest.json + weights.safetensors, SHA-256 verified on load).

            With --onnx, the base model is your own ONNX classifier (one N×C×H×W input, logits out): its blocks are
            found on its graph, the variants distilled on your unlabeled --source-images, and accuracy measured on
            labelled --val-images (an ImageFolder), or else reported as top-1 agreement with your model:
              fleetadapt model build --onnx model.onnx --source-images photos/ --val-images val/ --input 3x32x32 \
                  --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --out model.fap

            The default build (16/32/64 ResNet, 5 blocks × 5 variants = 3,125 combinations) takes a few minutes on
            two cores. A small one for a quick look:
              fleetadapt model build --widths 8,16,32 --train-steps 200 --distill-steps 40 --out /tmp/small.fap
            """))

    @Option(help: "Write the package here.")
    var out: String

    @Option(help: "A base model file from `fleetadapt model train-base` (resnet); without it a base model is trained here.")
    var base: String?

    @Option(help: "Your ONNX classifier to package instead of a base model trained here (needs --source-images and --input).")
    var onnx: String?

    @Option(help: "With --onnx: a folder of your unlabeled JPEG/PNG images (recursive); variants are distilled on them.")
    var sourceImages: String?

    @Option(help: "With --onnx: newest images of --source-images used.")
    var sourceLimit: Int = 2048

    @Option(help: "With --onnx: labelled images (one folder per class) to measure accuracy on; without, agreement with your model.")
    var valImages: String?

    @Option(help: "With --onnx: the network's input C×H×W, e.g. 3x224x224.")
    var input: String?

    @Option(help: "With --onnx: per-channel mean after scaling pixels to [0, 1], comma-separated (default 0 per channel).")
    var mean: Numbers?

    @Option(help: "With --onnx: per-channel std after scaling pixels to [0, 1], comma-separated (default 1 per channel).")
    var std: Numbers?

    @Option(help: "With --onnx: resize the shorter side to this before --crop (default: resize to exactly the input's H×W).")
    var resize: Int?

    @Option(help: "With --onnx: centre crop to this square side after --resize (default: none).")
    var crop: Int?

    @Option(help: "With --onnx: channel order the network expects: rgb, bgr or gray.")
    var channels: String?

    @Option(help: "With --onnx: a text file of class names, one a line in logit order (default: --val-images' folders).")
    var classes: String?

    @Option(help: "Family of the base model trained here: resnet or mobilenetv2.")
    var family: ModelFamily = .resnet

    @OptionGroup var shape: ResNetShapeOptions

    @Option(help: "mobilenetv2 expansion factor.")
    var expansion: Int = 4

    @Option(help: "Steps to train the base model (SGD, Nesterov, cosine), when no --base is given.")
    var trainSteps: Int = 600

    @Option(help: "Training images for the base model (from the start of the train split).")
    var trainImages: Int = 20000

    @Option(help: "Filter sparsities of the derived variants, comma-separated numbers in [0, 1) starting with 0 (the original block).")
    var sparsities = Sparsities([0, 0.25, 0.5, 0.75])

    @Flag(inversion: .prefixedNo, help: "Add a skip variant to residual blocks (depth elasticity).")
    var skip = true

    @Option(help: "Adapter kind for the per-position slots: parallel or lite-residual.")
    var adapter: AdapterKind = .parallel

    @Option(help: "Train-split images whose teacher features the variants are distilled on.")
    var distillImages: Int = 2048

    @Option(help: "Distillation steps per variant (Adam, cosine).")
    var distillSteps: Int = 300

    @Option(help: "Distillation batch size.")
    var distillBatch: Int = 32

    @Option(help: "Test-split images the accuracy estimator measures on.")
    var validationImages: Int = 1000

    @Option(help: "Random combinations measured to calibrate the estimator.")
    var calibration: Int = 160

    @Option(help: "Random combinations measured to report the estimator's error.")
    var checkCombinations: Int = 100

    @Option(help: "Timed runs per latency figure (after warm-up); the median is kept.")
    var latencyRuns: Int = 30

    @Option(help: "Package name (default: the output file's base name).")
    var name: String?

    @Option(help: "Seed of initialisation, shuffling and sampling.")
    var seed: UInt64 = 0

    func validate() throws {
        guard trainSteps > 0, trainImages >= 64, distillImages >= 20, distillSteps >= 0, distillBatch > 0, validationImages > 0,
              calibration >= 1, checkCombinations >= 1, latencyRuns >= 1 else {
            throw ValidationError("counts must be positive (train images ≥ 64, distillation images ≥ 20)")
        }
    }

    func run() throws {
        if onnx != nil { return try buildFromONNX() }
        let started = Date()
        let w = shape.widths.values, b = shape.blocks.values
        let architecture: Architecture
        let model: Model
        let info: ElasticBuilder.BaseInfo
        if let base {
            let (m, meta) = try BaseModelFile.read(path: base)
            model = m
            architecture = .resnet(widths: meta["widths"]!.split(separator: ",").compactMap { Int($0) },
                                   blocksPerStage: meta["blocks_per_stage"]!.split(separator: ",").compactMap { Int($0) },
                                   classes: model.head.outFeatures)
            info = .init(description: "loaded from \((base as NSString).lastPathComponent)", trainImages: nil,
                         trainSteps: meta["train_steps"].flatMap { Int($0) })
        } else {
            architecture = family == .resnet
                ? .resnet(widths: w, blocksPerStage: b)
                : .mobileNetV2(stemWidth: w[0], stages: zip(w, b).enumerated().map { .init(channels: $1.0, blocks: $1.1, stride: $0 == 0 ? 1 : 2) },
                               expansion: expansion)
            model = architecture.makeModel(seed: seed)
            let train = try FashionMNIST.load(split: .train, limit: trainImages)
            let bar = ProgressBar("train base model")
            bar.update(0, of: trainSteps)
            BaseModelRecipe(steps: trainSteps, seed: seed).train(model, on: train) { step, _ in bar.update(step + 1, of: trainSteps) }
            info = .init(description: "\(family.rawValue) \(shape.widths) × \(shape.blocks) trained here", trainImages: trainImages,
                         trainSteps: trainSteps)
        }
        let distill = try FashionMNIST.load(split: .train, limit: distillImages)
        let validation = try FashionMNIST.load(split: .test, limit: validationImages)
        var options = ElasticBuilder.Options()
        options.sparsities = sparsities.values
        options.includeSkip = skip
        options.adapterKind = adapter
        options.distillationSteps = distillSteps
        options.distillationBatchSize = distillBatch
        options.latencyRuns = latencyRuns
        options.calibrationCombinations = calibration
        options.validationCombinations = checkCombinations
        options.seed = seed
        var bars: [ElasticBuilder.Phase: ProgressBar] = [:]
        let packageName = name ?? ((out as NSString).lastPathComponent as NSString).deletingPathExtension
        let (package, report) = try ElasticBuilder.build(base: model, architecture: architecture, name: packageName, baseInfo: info,
                                                         distillation: distill, validation: validation, options: options) { phase, done, total in
            let bar = bars[phase] ?? ProgressBar(phase.rawValue)
            bars[phase] = bar
            bar.update(done, of: total)
        }
        let bytes = try package.encode()
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        let verified = try ElasticPackage.decode(bytes)
        PackageTables.printDetection(report.detection)
        PackageTables.printVariants(verified.manifest, undistilled: report.undistilledAccuracy)
        PackageTables.printSummary(verified.manifest, bytes: bytes)
        print(String(format: "built in %.1f s; wrote %@", Date().timeIntervalSince(started), out as NSString))
    }

    /// `--input`, `--channels`, `--mean`, `--std`, `--resize` and `--crop` of an ONNX import (`model build`, `demo`) as
    /// the input spec and the manifest's preprocessing record, refused with the flag at fault.
    static func importInput(input: String, channels: String?, mean: Numbers?, std: Numbers?, resize: Int?,
                            crop: Int?) throws -> (ONNXInputSpec, PackageManifest.InputPreprocessing) {
        let spec = try ONNXInputSpec(parsing: input)
        let order = channels ?? (spec.channels == 1 ? "gray" : "rgb")
        guard ["rgb", "bgr", "gray"].contains(order), (order == "gray") == (spec.channels == 1) else {
            throw ValidationError("--channels must be rgb or bgr for 3 channels, gray for 1")
        }
        let m = mean?.values ?? [Float](repeating: 0, count: spec.channels), s = std?.values ?? [Float](repeating: 1, count: spec.channels)
        guard m.count == spec.channels, s.count == spec.channels, s.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--mean and --std need \(spec.channels) values each, std positive")
        }
        guard resize.map({ (1...4096).contains($0) }) ?? true, crop.map({ (1...4096).contains($0) }) ?? true else {
            throw ValidationError("--resize and --crop must be in 1...4096")
        }
        if crop != nil, resize == nil { throw ValidationError("--crop needs --resize (the shorter side to resize to first)") }
        if let crop, let resize, crop > resize { throw ValidationError("--crop \(crop) is larger than --resize \(resize) (the image it is cut from)") }
        if let crop, crop != spec.width || crop != spec.height { throw ValidationError("--crop \(crop) must give the input's \(spec.width)x\(spec.height)") }
        if crop == nil, let resize, resize != min(spec.width, spec.height) {
            throw ValidationError("--resize \(resize) without --crop must be the input's shorter side (\(min(spec.width, spec.height)))")
        }
        let preprocessing = PackageManifest.InputPreprocessing(
            resize: resize.map { .init(shorterSide: $0, width: nil, height: nil) } ?? .init(shorterSide: nil, width: spec.width, height: spec.height),
            crop: crop.map { .init(width: $0, height: $0) }, channels: order, mean: m, std: s)
        return (spec, preprocessing)
    }

    /// `--onnx`: ONNXPackageBuild does the work.
    func buildFromONNX() throws {
        let started = Date()
        guard let onnx, let sourceImages, let input else {
            throw ValidationError("--onnx needs --source-images and --input (e.g. --input 3x224x224)")
        }
        guard sourceLimit >= 20 else { throw ValidationError("--source-limit must be at least 20") }
        let (spec, preprocessing) = try Self.importInput(input: input, channels: channels, mean: mean, std: std, resize: resize, crop: crop)
        var options = ElasticBuilder.Options()
        options.sparsities = sparsities.values
        options.includeSkip = skip
        options.adapterKind = adapter
        options.distillationSteps = distillSteps
        options.distillationBatchSize = distillBatch
        options.latencyRuns = latencyRuns
        options.calibrationCombinations = calibration
        options.validationCombinations = checkCombinations
        options.seed = seed
        let build = ONNXPackageBuild(onnxPath: onnx, input: spec, preprocessing: preprocessing, sourceImages: sourceImages,
                                     maxSourceImages: sourceLimit, validationImages: valImages, maxValidationImages: validationImages,
                                     classesFile: classes, options: options)
        var bars: [ElasticBuilder.Phase: ProgressBar] = [:]
        let packageName = name ?? ((out as NSString).lastPathComponent as NSString).deletingPathExtension
        let (package, report) = try build.run(name: packageName, log: { FileHandle.standardError.write(Data(("fleetadapt: " + $0 + "\n").utf8)) }) { phase, done, total in
            let bar = bars[phase] ?? ProgressBar(phase.rawValue)
            bars[phase] = bar
            bar.update(done, of: total)
        }
        let bytes = try package.encode()
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        let verified = try ElasticPackage.decode(bytes)
        print("Blocks of \((onnx as NSString).lastPathComponent): " + report.blocks.map { "\($0.name)\($0.residual ? " (residual)" : "")" }.joined(separator: ", "))
        print(String(format: "original combination against the ONNX network: max |Δlogits| %.2g", report.originalMaxAbsDifference))
        PackageTables.printVariants(verified.manifest, undistilled: report.undistilledAccuracy)
        PackageTables.printSummary(verified.manifest, bytes: bytes)
        print(String(format: "built in %.1f s; wrote %@", Date().timeIntervalSince(started), out as NSString))
    }
}
