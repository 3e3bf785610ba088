import ArgumentParser
import ElasticModel
import Foundation
import Learning

struct ModelBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an elastic model package: blocks × variants × adapters, distilled and profiled.",
        discussion: """
            From one trained base model (trained here on clean Fashion-MNIST, or loaded with --base):
              1. detects its blocks on the dataflow graph (single-entry single-exit parts with convolutions),
              2. derives variants of each block by L1-norm filter pruning at --sparsities, plus `skip` where the
                 block is residual (identity, or only its projection shortcut where the shape changes),
              3. distils every derived block against the original block's output (MSE on the teacher's features),
              4. adds one zero-initialised residual adapter per position, shared by all its variants,
              5. profiles every variant (FLOPs, bytes, peak activations, output tensor, median latency here),
              6. fits the accuracy estimators (additive, pairwise, logistic) on measured random combinations,
                 keeps the best by cross-validation, reports each one's error on other random combinations
                 and measures the combinations on the estimated accuracy–latency frontier,
              7. writes one package file (ustar: manifest.json + weights.safetensors, SHA-256 verified on load).

            The default build (16/32/64 ResNet, 5 blocks × 5 variants = 3,125 combinations) takes a few minutes on
            two cores. A small one for a quick look:
              fleetadapt model build --widths 8,16,32 --train-steps 200 --distill-steps 40 --out /tmp/small.fap
            """)

    @Option(help: "Write the package here.")
    var out: String

    @Option(help: "A base model file from `fleetadapt model train-base` (resnet); without it a base model is trained here.")
    var base: String?

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
}
