import Foundation
import Learning

/// The offline phase (EdgeScaler / LegoDNN / AdaptiveNet): from one trained base model, detect its blocks,
/// derive pruned and skip variants, distil them block-wise against the original, profile every variant, fit the
/// accuracy estimator, and write the package.
public enum ElasticBuilder {
    public struct Options: Sendable {
        public var sparsities: [Double] = [0, 0.25, 0.5, 0.75]
        public var includeSkip = true
        public var adapterKind: AdapterKind = .parallel
        public var distillationImages = 2048
        public var distillationSteps = 300
        public var distillationBatchSize = 32
        public var distillationLearningRate: Float = 2e-3
        public var latencyRuns = 30
        public var warmupRuns = 5
        public var calibrationCombinations = 160
        public var validationCombinations = 100
        /// Combinations on the estimated accuracy–latency frontier whose accuracy is measured into the package.
        public var frontierCombinations = 24
        public var seed: UInt64 = 0
        public init() {}
    }

    /// Where the base model came from, for the manifest's provenance.
    public struct BaseInfo: Sendable {
        public var description: String
        public var trainImages: Int?
        public var trainSteps: Int?
        public init(description: String, trainImages: Int?, trainSteps: Int?) {
            self.description = description
            self.trainImages = trainImages
            self.trainSteps = trainSteps
        }
    }

    public enum Phase: String, Sendable {
        case detect = "detect blocks", features = "teacher features", distil = "distil variants", profile = "profile latency",
             accuracy = "accuracy estimator", package = "write package"
    }

    public struct Report: Sendable {
        public var detection: BlockDetection.Result
        /// Single-swap accuracy of every variant right after pruning, before distillation (`[position][variant]`).
        public var undistilledAccuracy: [[Double]]
        public var seconds: [Phase: Double]
    }

    public static func build(base: Model, architecture: Architecture, name: String, baseInfo: BaseInfo, distillation: LabeledImages,
                             validation: LabeledImages, options: Options,
                             progress: (Phase, Int, Int) -> Void = { _, _, _ in }) throws -> (ElasticPackage, Report) {
        var seconds: [Phase: Double] = [:]
        var phaseStart = Date()
        func finish(_ p: Phase) { seconds[p] = Date().timeIntervalSince(phaseStart); phaseStart = Date() }

        progress(.detect, 0, 1)
        let detection = BlockDetection.detect(OpGraph(model: base))
        var positions = try ElasticNetwork.positions(of: base, sparsities: options.sparsities, includeSkip: options.includeSkip)
        let net = try ElasticNetwork(architecture: architecture, positions: positions, adapterKind: options.adapterKind, seed: options.seed)
        for (name, t) in base.namedTensors() { try net.model.store.set(name, try t.floats()) }
        progress(.detect, 1, 1)
        finish(.detect)

        progress(.features, 0, 1)
        let features = Distillation.teacherFeatures(net, images: distillation)
        progress(.features, 1, 1)
        finish(.features)

        // Prune, measure the undistilled variant, distil.
        let work = positions.reduce(0) { $0 + $1.variants.count - 1 }
        var done = 0
        var undistilled = positions.map { [Double](repeating: .nan, count: $0.variants.count) }
        let zero = [Int](repeating: 0, count: positions.count)
        net.compose(zero)
        let baseAccuracy = Trainer.accuracy(net.model, validation)
        progress(.distil, 0, work)
        for p in positions.indices {
            undistilled[p][0] = baseAccuracy
            for v in positions[p].variants.indices.dropFirst() {
                try FilterPruning.initialise(net.variantBlocks[p][v], from: net.variantBlocks[p][0], store: net.model.store)
                var c = zero
                c[p] = v
                net.compose(c)
                undistilled[p][v] = Trainer.accuracy(net.model, validation)
                if positions[p].variants[v].skip != .identity {
                    positions[p].variants[v].distillation = Distillation.distil(
                        net, position: p, variant: v, features: features, steps: options.distillationSteps,
                        batchSize: options.distillationBatchSize, learningRate: options.distillationLearningRate,
                        seed: options.seed &+ UInt64(p * 16 + v))
                }
                done += 1
                progress(.distil, done, work)
            }
        }
        net.compose(zero)
        finish(.distil)

        let (stem, head, reference) = profile(net, positions: &positions, image: distillation.tensor([0]), features: features, options: options,
                                              progress: progress)
        finish(.profile)

        let accuracy = fitAccuracy(net, positions: positions, images: validation, options: options, progress: progress)
        finish(.accuracy)

        progress(.package, 0, 1)
        let manifest = PackageManifest(
            format: PackageManifest.formatName, formatVersion: PackageManifest.currentVersion, name: name,
            createdAt: ISO8601DateFormatter().string(from: Date()), builder: "fleetadapt model build",
            architecture: architecture,
            adapter: PackageManifest.Adapter(kind: options.adapterKind.rawValue, zeroInitialised: true),
            blocks: positions, stem: stem, head: head,
            reference: reference,
            accuracy: accuracy, combinationCount: net.combinationCount,
            provenance: PackageManifest.Provenance(
                dataset: "fashion-mnist", sourceDomain: "clean", corruption: nil, baseModel: baseInfo.description,
                baseTrainImages: baseInfo.trainImages, baseTrainSteps: baseInfo.trainSteps, cleanTestAccuracy: baseAccuracy,
                distillationImages: distillation.count, distillationSteps: options.distillationSteps,
                distillationBatchSize: options.distillationBatchSize, distillationLearningRate: Double(options.distillationLearningRate),
                distillationLoss: "mse", seed: options.seed),
            blobs: [])
        let package = ElasticPackage(manifest: manifest, tensors: net.model.namedTensors())
        progress(.package, 1, 1)
        finish(.package)
        return (package, Report(detection: detection, undistilledAccuracy: undistilled, seconds: seconds))
    }

    /// The accuracy estimator of a profiled network, fitted on `images` with the options' combination counts and the
    /// variants' measured latencies (for the frontier it measures): the same fit for built-in and imported packages.
    static func fitAccuracy(_ net: ElasticNetwork, positions: [PositionSpec], images: LabeledImages, options: Options,
                            progress: (Phase, Int, Int) -> Void) -> AccuracyEstimate {
        AccuracyEstimator.fit(net, images: images, calibrationCount: options.calibrationCombinations,
                              validationCount: options.validationCombinations, frontierCount: options.frontierCombinations,
                              latencies: positions.map { $0.variants.map { $0.profile?.latencyMs ?? 0 } },
                              seed: options.seed &+ 99) { progress(.accuracy, $0, $1) }
    }

    /// Profiles every variant, the stem and the head at batch 1 (on one real image and its teacher features), and the
    /// whole original network for the reference throughput.
    static func profile(_ net: ElasticNetwork, positions: inout [PositionSpec], image: Tensor, features: Distillation.Features, options: Options,
                        progress: (Phase, Int, Int) -> Void) -> (stem: CostProfile, head: CostProfile, reference: PackageManifest.Reference) {
        let total = positions.reduce(0) { $0 + $1.variants.count } + 3
        var done = 0
        progress(.profile, 0, total)
        let stem = Profiler.profileStem(net, sample: image, runs: options.latencyRuns, warmup: options.warmupRuns)
        done += 1; progress(.profile, done, total)
        for p in positions.indices {
            let sample = features.batch(level: p, indices: [0])
            for v in positions[p].variants.indices {
                positions[p].variants[v].profile = Profiler.profileBlock(net, position: p, variant: v, sample: sample,
                                                                         runs: options.latencyRuns, warmup: options.warmupRuns)
                done += 1; progress(.profile, done, total)
            }
        }
        let head = Profiler.profileHead(net, sample: features.batch(level: positions.count, indices: [0]),
                                        runs: options.latencyRuns, warmup: options.warmupRuns)
        done += 1; progress(.profile, done, total)
        let fullLatency = Profiler.networkLatencyMs(net, sample: image, runs: options.latencyRuns, warmup: options.warmupRuns)
        done += 1; progress(.profile, done, total)
        let fullFlops = stem.flops + head.flops + positions.reduce(0) { $0 + ($1.variants[0].profile?.flops ?? 0) }
        let reference = PackageManifest.Reference(gflops: fullFlops / (max(fullLatency, 1e-6) * 1e6), fullNetworkLatencyMs: fullLatency,
                                                  latencyRuns: options.latencyRuns, warmupRuns: options.warmupRuns, blasThreads: 1)
        return (stem, head, reference)
    }
}
