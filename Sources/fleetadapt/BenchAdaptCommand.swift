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
              shared  adapters trained once on the full combination, installed as they are (EdgeScaler),
              own     adapters trained on that combination itself (one training per combination).
            Then --devices simulated devices, each with its own slice of the adaptation images and a random
            combination, train locally; their adapters are averaged (sample-weighted, as the coordinator does)
            and each device's accuracy with its local vs the aggregated adapters is compared.
            Adapters only train (batch norms keep the source statistics), so adapters are all that moves.
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

    @Option(help: "Adam learning rate.")
    var learningRate: Float = 0.002

    @Option(help: "Seed of the combinations and the shuffles.")
    var seed: UInt64 = 0

    func validate() throws {
        guard Corruption(rawValue: corruption) != nil else { throw ValidationError("--corruption: unknown (see fleetadapt data list-corruptions)") }
        guard (1...5).contains(severity) else { throw ValidationError("--severity must be 1–5") }
        guard let l = AdaptationLoss(rawValue: loss), l != .bnStats else { throw ValidationError("--loss must be tent, shot-im or eata") }
        guard images >= 64, images * 2 <= 10_000, combinations >= 1, devices >= 0, steps >= 1, batchSize >= 1, learningRate > 0 else {
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
        func train(on data: LabeledImages, seed: UInt64) -> Double {
            Adaptation.adapt(net.model, on: data, loss: lossKind, steps: steps, batchSize: batchSize, learningRate: learningRate,
                             trainable: .adapters, seed: seed).seconds
        }
        func accuracy() -> Double { Trainer.accuracy(net.model, measureSet) }
        let ids: ([Int]) -> String = { c in c.enumerated().map { net.positions[$0.offset].variants[$0.element].id }.joined(separator: "/") }

        print("package \(pkg.manifest.name): \(pkg.manifest.combinationCount) combinations; target \(corruption)-\(severity); "
              + "\(images) images adapt, \(images) measure; \(loss), \(steps) steps × batch \(batchSize), adapters only")
        let full = [Int](repeating: 0, count: net.positions.count)
        var rng = SeededRandom(seed: seed)
        var choices = [full]
        while choices.count < combinations + 1 {
            let c = net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) }
            if !choices.contains(c) { choices.append(c) }
        }

        // Adapters trained once, on the full combination.
        try reset()
        net.compose(full)
        let sharedSeconds = train(on: adaptSet, seed: seed)
        let shared = adapters()

        print("")
        print("combination              none    shared   own     shared gain / own gain")
        var gains: [(shared: Double, own: Double)] = []
        var ownSeconds = 0.0
        for c in choices {
            try reset(); net.compose(c)
            let none = accuracy()
            try install(shared)
            let withShared = accuracy()
            try reset(); net.compose(c)
            ownSeconds += train(on: adaptSet, seed: seed)
            let own = accuracy()
            gains.append((withShared - none, own - none))
            let ratio = abs(own - none) > 1e-9 ? String(format: "%.2f", (withShared - none) / (own - none)) : "—"
            print(ids(c).padding(toLength: 24, withPad: " ", startingAt: 0)
                  + String(format: " %.3f   %.3f   %.3f   ", none, withShared, own) + ratio)
        }
        let meanShared = gains.map(\.shared).reduce(0, +) / Double(gains.count)
        let meanOwn = gains.map(\.own).reduce(0, +) / Double(gains.count)
        print(String(format: "mean gain: shared %+.3f, own %+.3f → shared adapters recover %.0f%% of the per-combination gain; "
                     + "training once took %.1f s vs %.1f s for one training per combination (%d×)",
                     meanShared, meanOwn, meanOwn != 0 ? 100 * meanShared / meanOwn : 0, sharedSeconds, ownSeconds, choices.count))

        guard devices > 0 else { return }
        // Fleet-level learning: local training on each device's slice, then the sample-weighted average.
        let per = images / devices
        var local: [(choice: [Int], adapters: [String: SafeTensor], accuracy: Double, none: Double)] = []
        for d in 0..<devices {
            let c = d == 0 ? full : net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) }
            try reset(); net.compose(c)
            let none = accuracy()
            _ = train(on: adaptSet.subset((d * per)..<((d + 1) * per)), seed: seed &+ UInt64(d))
            local.append((c, adapters(), accuracy(), none))
        }
        var averaged: [String: SafeTensor] = [:]
        for name in local[0].adapters.keys {
            let all = try local.map { try $0.adapters[name]!.floats() }
            let mean = (0..<all[0].count).map { i in all.reduce(Float(0)) { $0 + $1[i] } / Float(all.count) }
            averaged[name] = SafeTensor(floats: mean, shape: local[0].adapters[name]!.shape)
        }
        print("")
        print("device  combination              none    local   aggregated (\(devices) devices × \(per) images each)")
        var sums = (none: 0.0, local: 0.0, aggregated: 0.0)
        for (d, l) in local.enumerated() {
            try reset(); net.compose(l.choice)
            try install(averaged)
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
