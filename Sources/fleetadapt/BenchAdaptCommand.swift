import ArgumentParser
import ElasticModel
import Foundation
import Learning

/// The EdgeScaler experiment on a package, plus fleet-level aggregation, in one run.
struct BenchAdaptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapt",
        abstract: "Do adapters trained once adapt every combination? And do aggregated adapters match local ones?",
        discussion: """
            On a target domain (a corruption of the test split; the first --images adapt, the next --images
            measure, labels read only to measure), for the full combination and --combinations random ones:
              none    accuracy without adaptation,
              bn      batch-norm statistics re-estimated on the target only (no training),
              shared  adapters trained once for the whole space (every other step on the full combination,
                      the rest on random ones; --shared-schedule), installed as they are (EdgeScaler),
              own     adapters trained on that combination itself (one training per combination),
              full    full fine-tuning of that combination: every weight and the batch-norm statistics train
                      (the baseline EdgeScaler compares against), same loss, images, steps and batch.
            It prints total training time and energy (time × --power-watts) of training once vs fine-tuning
            every combination, the time reduction, and the accuracy difference (EdgeScaler: 85 % less time).
            Then --devices simulated devices, each with its own slice of the adaptation images and a random
            combination, train locally; their adapters are averaged (sample-weighted, as the coordinator does)
            and each device's accuracy with its local vs the aggregated adapters is compared.
            Adapters train under each batch's statistics; afterwards every combination re-estimates its batch-norm
            statistics on the target images (forward passes only, `bn-stats`), and that cost is counted.
              fleetadapt bench adapt --package /tmp/fashion.fap
            """)

    @Option(help: "An elastic package from `fleetadapt model build`.")
    var package: String

    @Option(help: "Corruption of the target domain (see `fleetadapt data list-corruptions`).")
    var corruption: String = "fog"

    @Option(help: "Severity 1–5.")
    var severity: Int = 4

    @Option(help: "Images to adapt on, and as many more to measure on.")
    var images: Int = 600

    @Option(help: "Random combinations besides the full one.")
    var combinations: Int = 8

    @Option(help: "Simulated devices for the aggregation comparison (0 skips it).")
    var devices: Int = 4

    @Option(help: "Adaptation loss: tent, shot-im or eata (adapter-only TENT collapses to one class at this rate; SHOT-IM's diversity term prevents it).")
    var loss: String = "shot-im"

    @Option(help: "Adaptation steps per training.")
    var steps: Int = 60

    @Option(help: "Batch size.")
    var batchSize: Int = 32

    @Option(help: "Adam learning rate of adapter training.")
    var learningRate: Float = 0.002

    @Option(help: "Adam learning rate of full fine-tuning (all weights move, so it needs a smaller one).")
    var fullLearningRate: Float = 0.0001

    @Option(help: "Steps of the one shared training (default: --steps); it serves every combination, so it may afford more.")
    var sharedSteps: Int?

    @Option(help: "Combinations the shared adapters train on: `sampled` (every other step a random one) or `full` only.")
    var sharedSchedule: String = "sampled"

    @Option(help: "Power draw in watts for the energy estimate (energy = training time × power, as the agent reports).")
    var powerWatts: Double = 5

    @Option(help: "Seed of the combinations and the shuffles.")
    var seed: UInt64 = 0

    func validate() throws {
        guard Corruption(rawValue: corruption) != nil else { throw ValidationError("--corruption: unknown (see fleetadapt data list-corruptions)") }
        guard (1...5).contains(severity) else { throw ValidationError("--severity must be 1–5") }
        guard ["sampled", "full"].contains(sharedSchedule) else { throw ValidationError("--shared-schedule must be sampled or full") }
        guard let l = AdaptationLoss(rawValue: loss), l != .bnStats else { throw ValidationError("--loss must be tent, shot-im or eata") }
        guard images >= 64, images * 2 <= 10_000, (sharedSteps ?? 1) >= 1, combinations >= 1, devices >= 0, steps >= 1, batchSize >= 1, learningRate > 0, fullLearningRate > 0, powerWatts > 0 else {
            throw ValidationError("--images 64…5000, other counts positive")
        }
        guard devices == 0 || images / devices >= batchSize else { throw ValidationError("each device needs at least --batch-size images") }
    }

    func run() throws {
        let pkg = try ElasticPackage.read(path: package)
        let net = try pkg.network()
        let clean = try FashionMNIST.load(split: .test, limit: 2 * images)
        let target = try Corruption(rawValue: corruption)!.apply(to: clean, severity: severity, seed: 11)
        var adaptSet = target.subset(0..<images)
        adaptSet.labels = nil
        let measureSet = target.subset(images..<(2 * images))
        let lossKind = AdaptationLoss(rawValue: loss)!
        let pristine = pkg.tensors
        func reset() throws { try net.model.load(pristine) }
        func adapters() -> [String: SafeTensor] { net.model.namedTensors().filter { $0.key.contains(".adapter.") } }
        func install(_ a: [String: SafeTensor]) throws { for (n, t) in a { try net.model.store.set(n, try t.floats()) } }
        func train(on data: LabeledImages, seed: UInt64, steps: Int? = nil, beforeStep: (Int) -> Void = { _ in }) -> Double {
            Adaptation.adapt(net.model, on: data, loss: lossKind, steps: steps ?? self.steps, batchSize: batchSize, learningRate: learningRate,
                             trainable: .adaptersOnBatchStatistics, seed: seed, beforeStep: beforeStep).seconds
        }
        func fineTune(on data: LabeledImages, seed: UInt64) -> Double {
            Adaptation.adapt(net.model, on: data, loss: lossKind, steps: steps, batchSize: batchSize, learningRate: fullLearningRate,
                             trainable: .all, seed: seed).seconds
        }
        /// Re-estimates the composed combination's batch-norm statistics on the target images (forward passes only).
        func recalibrate(on data: LabeledImages) -> Double {
            Adaptation.adapt(net.model, on: data, loss: .bnStats, steps: max(1, data.count / batchSize), batchSize: batchSize).seconds
        }
        func accuracy() -> Double { Trainer.accuracy(net.model, measureSet) }
        let ids: ([Int]) -> String = { c in c.enumerated().map { net.positions[$0.offset].variants[$0.element].id }.joined(separator: "/") }

        print("package \(pkg.manifest.name): \(pkg.manifest.combinationCount) combinations; target \(corruption)-\(severity); "
              + "\(images) images adapt, \(images) measure; \(loss), \(steps) steps × batch \(batchSize)")
        let full = [Int](repeating: 0, count: net.positions.count)
        var rng = SeededRandom(seed: seed)
        var choices = [full]
        while choices.count < combinations + 1 {
            let c = net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) }
            if !choices.contains(c) { choices.append(c) }
        }

        // Adapters trained once for the whole space: every other step on the full combination, the rest on random ones.
        try reset()
        var schedule = SeededRandom(seed: seed &+ 7)
        let sharedSeconds = train(on: adaptSet, seed: seed, steps: sharedSteps ?? steps) { step in
            net.compose(step % 2 == 0 || sharedSchedule == "full" ? full : net.variantBlocks.map { Int(schedule.next() % UInt64($0.count)) })
        }
        let shared = adapters()

        print("")
        print("combination              none    bn      shared  own     full    shared gain / own gain")
        var rows: [(none: Double, bn: Double, shared: Double, own: Double, full: Double)] = []
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
            ownSeconds += train(on: adaptSet, seed: seed) + recalibrate(on: adaptSet)
            let own = accuracy()
            try reset(); net.compose(c)
            fullSeconds += fineTune(on: adaptSet, seed: seed)
            let full = accuracy()
            rows.append((none, bn, withShared, own, full))
            let ratio = abs(own - bn) > 1e-9 ? String(format: "%.2f", (withShared - bn) / (own - bn)) : "—"
            print(ids(c).padding(toLength: 24, withPad: " ", startingAt: 0)
                  + String(format: " %.3f   %.3f   %.3f   %.3f   %.3f   ", none, bn, withShared, own, full) + ratio)
        }
        try reset()
        let k = Double(rows.count)
        let mean = (none: rows.map(\.none).reduce(0, +) / k, bn: rows.map(\.bn).reduce(0, +) / k, shared: rows.map(\.shared).reduce(0, +) / k,
                    own: rows.map(\.own).reduce(0, +) / k, full: rows.map(\.full).reduce(0, +) / k)
        print(String(format: "mean accuracy: none %.3f, statistics only %.3f, shared %.3f, own %.3f, full fine-tuning %.3f",
                     mean.none, mean.bn, mean.shared, mean.own, mean.full))
        print(String(format: "shared adapters recover %.0f%% of the per-combination adapter gain over re-estimated statistics",
                     mean.own != mean.bn ? 100 * (mean.shared - mean.bn) / (mean.own - mean.bn) : 0))
        let sharedTotal = sharedSeconds + recalibrationSeconds
        print(String(format: "EdgeScaler: adapters trained once %.1f s + statistics of %d combinations %.1f s = %.1f s (%.1f J) "
                     + "vs full fine-tuning of each %.1f s (%.1f J): %.1f%% less training time; accuracy %+.1f points vs full "
                     + "fine-tuning (goal: ≥ 85%% less, within 2 points); one adapter training per combination took %.1f s",
                     sharedSeconds, rows.count, recalibrationSeconds, sharedTotal, sharedTotal * powerWatts,
                     fullSeconds, fullSeconds * powerWatts, 100 * (1 - sharedTotal / fullSeconds),
                     100 * (mean.shared - mean.full), ownSeconds))

        guard devices > 0 else { return }
        // Fleet-level learning: local training on each device's slice, then the sample-weighted average.
        let per = images / devices
        var local: [(choice: [Int], adapters: [String: SafeTensor], accuracy: Double, none: Double)] = []
        for d in 0..<devices {
            let c = d == 0 ? full : net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) }
            try reset(); net.compose(c)
            let none = accuracy()
            let slice = adaptSet.subset((d * per)..<((d + 1) * per))
            _ = train(on: slice, seed: seed &+ UInt64(d))
            _ = recalibrate(on: slice)
            local.append((c, adapters(), accuracy(), none))
        }
        var average = try WeightedTensorAverage()
        for l in local { _ = average.fold(l.adapters, weight: Double(per)) }
        let averaged = average.tensors
        print("")
        print("device  combination              none    local   aggregated (\(devices) devices × \(per) images each)")
        var sums = (none: 0.0, local: 0.0, aggregated: 0.0)
        for (d, l) in local.enumerated() {
            try reset(); net.compose(l.choice)
            try install(averaged)
            _ = recalibrate(on: adaptSet.subset((d * per)..<((d + 1) * per)))
            let aggregated = accuracy()
            sums.none += l.none; sums.local += l.accuracy; sums.aggregated += aggregated
            print(String(format: "%-7d ", d + 1) + ids(l.choice).padding(toLength: 24, withPad: " ", startingAt: 0)
                  + String(format: " %.3f   %.3f   %.3f", l.none, l.accuracy, aggregated))
        }
        let n = Double(devices)
        print(String(format: "mean: none %.3f, local %.3f, aggregated %.3f (aggregated − local %+.3f)",
                     sums.none / n, sums.local / n, sums.aggregated / n, (sums.aggregated - sums.local) / n))
    }
}
