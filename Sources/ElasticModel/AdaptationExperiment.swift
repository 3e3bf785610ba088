import Learning

/// The EdgeScaler experiment on one package: do adapters trained once serve every combination, against adapters
/// trained per combination and full fine-tuning? And do adapters averaged over devices match the local ones?
///
/// On a target domain (a corruption of the test split; the first `images` adapt, the next `images` measure, labels
/// read only to measure), for the full combination and `combinations` random ones it measures the accuracy with no
/// adaptation, with re-estimated batch-norm statistics only, with the shared adapters, with the combination's own
/// adapters and after full fine-tuning, and the training time of each approach. Then `devices` simulated devices
/// train on their own slices; their adapters are averaged (sample-weighted, as the coordinator does).
public struct AdaptationExperiment: Sendable {
    /// Which combinations the one shared training composes.
    public enum SharedSchedule: String, Sendable, CaseIterable {
        /// Every other step the full combination, the rest a random one.
        case sampled
        /// The full combination only.
        case full
    }

    public struct Configuration: Sendable, Equatable {
        public var corruption: Corruption = .fog
        public var severity = 4
        /// Images to adapt on, and as many more to measure on.
        public var images = 600
        /// Random combinations measured besides the full one.
        public var combinations = 8
        /// Simulated devices of the aggregation comparison (0 skips it).
        public var devices = 4
        public var loss: AdaptationLoss = .shotIM
        public var steps = 60
        public var batchSize = 32
        /// Adam's learning rate for adapter training.
        public var learningRate: Float = 0.002
        /// Adam's learning rate for full fine-tuning (every weight moves, so it needs a smaller one).
        public var fullLearningRate: Float = 0.0001
        /// Steps of the one shared training (nil: `steps`).
        public var sharedSteps: Int?
        public var sharedSchedule: SharedSchedule = .sampled
        public var seed: UInt64 = 0

        public init() {}

        /// The first rule the configuration breaks, or nil.
        public var problem: String? {
            if !(1...5).contains(severity) { return "severity must be 1–5" }
            if loss == .bnStats { return "loss must be tent, shot-im or eata (bn-stats does not train)" }
            if images < 64 || images * 2 > 10_000 { return "images must be 64…5000" }
            if (sharedSteps ?? 1) < 1 || combinations < 1 || devices < 0 || steps < 1 || batchSize < 1 || !(learningRate > 0)
                || !(fullLearningRate > 0) {
                return "counts and learning rates must be positive"
            }
            if devices > 0 && images / devices < batchSize { return "each device needs at least batch-size images" }
            return nil
        }
    }

    /// One combination's accuracies on the measurement images, by approach.
    public struct CombinationResult: Sendable, Equatable {
        public var choice: [Int]
        /// Variant ids joined with `/`.
        public var ids: String
        public var none: Double
        public var statisticsOnly: Double
        public var shared: Double
        public var own: Double
        public var fullFineTuning: Double

        /// How much of the own adapters' gain over re-estimated statistics the shared ones reach (nil when own gained nothing).
        public var sharedGainRatio: Double? {
            abs(own - statisticsOnly) > 1e-9 ? (shared - statisticsOnly) / (own - statisticsOnly) : nil
        }
    }

    /// One simulated device: its combination and accuracy unadapted, with its local and with the averaged adapters.
    public struct DeviceResult: Sendable, Equatable {
        public var choice: [Int]
        public var ids: String
        public var none: Double
        public var local: Double
        public var aggregated: Double
    }

    public struct Result: Sendable {
        public var combinations: [CombinationResult]
        /// The one shared adapter training.
        public var sharedSeconds: Double
        /// Re-estimating every combination's statistics after the shared adapters are installed.
        public var recalibrationSeconds: Double
        /// Training (and re-estimating) own adapters for every combination.
        public var ownSeconds: Double
        /// Fully fine-tuning every combination.
        public var fullSeconds: Double
        public var devices: [DeviceResult]
        public var imagesPerDevice: Int

        public var sharedTotalSeconds: Double { sharedSeconds + recalibrationSeconds }
        /// 1 − (shared training + statistics) / full fine-tuning of each combination (EdgeScaler's goal: ≥ 0.85).
        public var timeReduction: Double { 1 - sharedTotalSeconds / fullSeconds }

        public struct Means: Sendable, Equatable {
            public var none, statisticsOnly, shared, own, fullFineTuning: Double
        }

        public var means: Means {
            let k = Double(combinations.count)
            func mean(_ f: (CombinationResult) -> Double) -> Double { combinations.map(f).reduce(0, +) / k }
            return Means(none: mean(\.none), statisticsOnly: mean(\.statisticsOnly), shared: mean(\.shared), own: mean(\.own),
                         fullFineTuning: mean(\.fullFineTuning))
        }

        /// The share of the own adapters' mean gain over re-estimated statistics that the shared adapters reach (0 when none).
        public var recoveredGain: Double {
            let m = means
            return m.own != m.statisticsOnly ? (m.shared - m.statisticsOnly) / (m.own - m.statisticsOnly) : 0
        }

        public struct DeviceMeans: Sendable, Equatable {
            public var none, local, aggregated: Double
        }

        /// Nil when the experiment had no devices.
        public var deviceMeans: DeviceMeans? {
            guard !devices.isEmpty else { return nil }
            let n = Double(devices.count)
            return DeviceMeans(none: devices.map(\.none).reduce(0, +) / n, local: devices.map(\.local).reduce(0, +) / n,
                               aggregated: devices.map(\.aggregated).reduce(0, +) / n)
        }
    }

    /// What a run reports while it goes (the whole experiment takes minutes).
    public enum Event: Sendable {
        /// The shared adapters are trained.
        case sharedTrained(seconds: Double)
        /// One combination is measured.
        case combination(CombinationResult)
    }

    public struct ConfigurationError: Error, CustomStringConvertible {
        public var description: String
    }

    public let package: ElasticPackage
    public let configuration: Configuration

    public init(package: ElasticPackage, configuration: Configuration) throws {
        if let problem = configuration.problem { throw ConfigurationError(description: problem) }
        self.package = package
        self.configuration = configuration
    }

    /// Runs the experiment on the package's network (fresh from the package, so runs do not affect each other).
    public func run(observe: (Event) -> Void = { _ in }) throws -> Result {
        let config = configuration
        let net = try package.network()
        let clean = try FashionMNIST.load(split: .test, limit: 2 * config.images)
        let target = try config.corruption.apply(to: clean, severity: config.severity, seed: 11)
        var adaptSet = target.subset(0..<config.images)
        adaptSet.labels = nil
        let measureSet = target.subset(config.images..<(2 * config.images))
        let pristine = package.tensors
        func reset() throws { try net.model.load(pristine) }
        func adapters() -> [String: SafeTensor] { net.model.namedTensors().filter { $0.key.contains(".adapter.") } }
        func install(_ a: [String: SafeTensor]) throws { for (n, t) in a { try net.model.store.set(n, try t.floats()) } }
        func train(on data: LabeledImages, seed: UInt64, steps: Int? = nil, beforeStep: (Int) -> Void = { _ in }) -> Double {
            Adaptation.adapt(net.model, on: data, loss: config.loss, steps: steps ?? config.steps, batchSize: config.batchSize,
                             learningRate: config.learningRate, trainable: .adaptersOnBatchStatistics, seed: seed,
                             beforeStep: beforeStep).seconds
        }
        func fineTune(on data: LabeledImages, seed: UInt64) -> Double {
            Adaptation.adapt(net.model, on: data, loss: config.loss, steps: config.steps, batchSize: config.batchSize,
                             learningRate: config.fullLearningRate, trainable: .all, seed: seed).seconds
        }
        /// Re-estimates the composed combination's batch-norm statistics on the target images (forward passes only).
        func recalibrate(on data: LabeledImages) -> Double {
            Adaptation.adapt(net.model, on: data, loss: .bnStats, steps: max(1, data.count / config.batchSize),
                             batchSize: config.batchSize).seconds
        }
        func accuracy() -> Double { Trainer.accuracy(net.model, measureSet) }
        func ids(_ c: [Int]) -> String { c.enumerated().map { net.positions[$0.offset].variants[$0.element].id }.joined(separator: "/") }
        func random(_ rng: inout SeededRandom) -> [Int] { net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) } }

        let full = [Int](repeating: 0, count: net.positions.count)
        var rng = SeededRandom(seed: config.seed)
        var choices = [full]
        // A package with fewer combinations than asked for measures all it has.
        while choices.count < min(config.combinations + 1, net.combinationCount) {
            let c = random(&rng)
            if !choices.contains(c) { choices.append(c) }
        }

        // Adapters trained once for the whole space.
        try reset()
        var schedule = SeededRandom(seed: config.seed &+ 7)
        let sharedSeconds = train(on: adaptSet, seed: config.seed, steps: config.sharedSteps ?? config.steps) { step in
            net.compose(step % 2 == 0 || config.sharedSchedule == .full ? full : random(&schedule))
        }
        let shared = adapters()
        observe(.sharedTrained(seconds: sharedSeconds))

        var rows: [CombinationResult] = []
        var ownSeconds = 0.0, fullSeconds = 0.0, recalibrationSeconds = 0.0
        for c in choices {
            try reset(); net.compose(c)
            let none = accuracy()
            _ = recalibrate(on: adaptSet)
            let bn = accuracy()
            try install(shared)
            recalibrationSeconds += recalibrate(on: adaptSet)
            let withShared = accuracy()
            try reset(); net.compose(c)
            ownSeconds += train(on: adaptSet, seed: config.seed) + recalibrate(on: adaptSet)
            let own = accuracy()
            try reset(); net.compose(c)
            fullSeconds += fineTune(on: adaptSet, seed: config.seed)
            let fineTuned = accuracy()
            let row = CombinationResult(choice: c, ids: ids(c), none: none, statisticsOnly: bn, shared: withShared, own: own,
                                        fullFineTuning: fineTuned)
            rows.append(row)
            observe(.combination(row))
        }
        try reset()

        // Fleet-level learning: local training on each device's slice, then the sample-weighted average.
        var devices: [DeviceResult] = []
        let per = config.devices > 0 ? config.images / config.devices : 0
        if config.devices > 0 {
            var local: [(choice: [Int], adapters: [String: SafeTensor], accuracy: Double, none: Double)] = []
            for d in 0..<config.devices {
                let c = d == 0 ? full : random(&rng)
                try reset(); net.compose(c)
                let none = accuracy()
                let slice = adaptSet.subset((d * per)..<((d + 1) * per))
                _ = train(on: slice, seed: config.seed &+ UInt64(d))
                _ = recalibrate(on: slice)
                local.append((c, adapters(), accuracy(), none))
            }
            var average = try WeightedTensorAverage()
            for l in local { _ = average.fold(l.adapters, weight: Double(per)) }
            let averaged = average.tensors
            for (d, l) in local.enumerated() {
                try reset(); net.compose(l.choice)
                try install(averaged)
                _ = recalibrate(on: adaptSet.subset((d * per)..<((d + 1) * per)))
                devices.append(DeviceResult(choice: l.choice, ids: ids(l.choice), none: l.none, local: l.accuracy, aggregated: accuracy()))
            }
            try reset()
        }
        return Result(combinations: rows, sharedSeconds: sharedSeconds, recalibrationSeconds: recalibrationSeconds,
                      ownSeconds: ownSeconds, fullSeconds: fullSeconds, devices: devices, imagesPerDevice: per)
    }
}
