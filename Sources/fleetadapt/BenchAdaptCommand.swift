import ArgumentParser
import CommandSupport
import ElasticModel
import Foundation
import Learning

/// The EdgeScaler experiment on a package, plus fleet-level aggregation, in one run.
struct BenchAdaptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapt",
        abstract: "Do adapters trained once adapt every combination? And do aggregated adapters match local ones?",
        discussion: HelpText.reflow("""
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
            """))

    @Option(help: "An elastic package from `fleetadapt model build`.")
    var package: String

    @OptionGroup var domain: TargetDomainOptions

    @Option(help: "Images to adapt on, and as many more to measure on.")
    var images: Int = 600

    @Option(help: "Random combinations besides the full one.")
    var combinations: Int = 8

    @Option(help: "Simulated devices for the aggregation comparison (0 skips it).")
    var devices: Int = 4

    @Option(help: "Adaptation loss: tent, shot-im or eata (adapter-only TENT collapses to one class at this rate; SHOT-IM's diversity term prevents it).")
    var loss: AdaptationLoss = .shotIM

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
    var sharedSchedule: AdaptationExperiment.SharedSchedule = .sampled

    @Option(help: "Power draw in watts for the energy estimate (energy = training time × power, as the agent reports).")
    var powerWatts: Double = 5

    @Option(help: "Seed of the combinations and the shuffles.")
    var seed: UInt64 = 0

    var experimentConfiguration: AdaptationExperiment.Configuration {
        var c = AdaptationExperiment.Configuration()
        c.corruption = domain.corruption
        c.severity = domain.severity
        c.images = images
        c.combinations = combinations
        c.devices = devices
        c.loss = loss
        c.steps = steps
        c.batchSize = batchSize
        c.learningRate = learningRate
        c.fullLearningRate = fullLearningRate
        c.sharedSteps = sharedSteps
        c.sharedSchedule = sharedSchedule
        c.seed = seed
        return c
    }

    func validate() throws {
        if let problem = experimentConfiguration.problem { throw ValidationError(problem) }
        guard powerWatts > 0 else { throw ValidationError("--power-watts must be positive") }
    }

    func run() throws {
        let pkg = try ElasticPackage.read(path: package)
        let experiment = try AdaptationExperiment(package: pkg, configuration: experimentConfiguration)
        print("package \(pkg.manifest.name): \(pkg.manifest.combinationCount) combinations; target \(domain.corruption.rawValue)-\(domain.severity); "
              + "\(images) images adapt, \(images) measure; \(loss.rawValue), \(steps) steps × batch \(batchSize)")
        let result = try experiment.run { event in
            switch event {
            case .sharedTrained:
                print("")
                print("combination              none    bn      shared  own     full    shared gain / own gain")
            case .combination(let r):
                print(r.ids.padding(toLength: 24, withPad: " ", startingAt: 0)
                      + String(format: " %.3f   %.3f   %.3f   %.3f   %.3f   ", r.none, r.statisticsOnly, r.shared, r.own, r.fullFineTuning)
                      + (r.sharedGainRatio.map { String(format: "%.2f", $0) } ?? "—"))
            }
        }
        let mean = result.means
        print(String(format: "mean accuracy: none %.3f, statistics only %.3f, shared %.3f, own %.3f, full fine-tuning %.3f",
                     mean.none, mean.statisticsOnly, mean.shared, mean.own, mean.fullFineTuning))
        print(String(format: "shared adapters recover %.0f%% of the per-combination adapter gain over re-estimated statistics",
                     100 * result.recoveredGain))
        print(String(format: "EdgeScaler: adapters trained once %.1f s + statistics of %d combinations %.1f s = %.1f s (%.1f J) "
                     + "vs full fine-tuning of each %.1f s (%.1f J): %.1f%% less training time; accuracy %+.1f points vs full "
                     + "fine-tuning (goal: ≥ 85%% less, within 2 points); one adapter training per combination took %.1f s",
                     result.sharedSeconds, result.combinations.count, result.recalibrationSeconds, result.sharedTotalSeconds,
                     result.sharedTotalSeconds * powerWatts, result.fullSeconds, result.fullSeconds * powerWatts,
                     100 * result.timeReduction, 100 * (mean.shared - mean.fullFineTuning), result.ownSeconds))

        guard let sums = result.deviceMeans else { return }
        print("")
        print("device  combination              none    local   aggregated (\(devices) devices × \(result.imagesPerDevice) images each)")
        for (d, r) in result.devices.enumerated() {
            print(String(format: "%-7d ", d + 1) + r.ids.padding(toLength: 24, withPad: " ", startingAt: 0)
                  + String(format: " %.3f   %.3f   %.3f", r.none, r.local, r.aggregated))
        }
        print(String(format: "mean: none %.3f, local %.3f, aggregated %.3f (aggregated − local %+.3f)",
                     sums.none, sums.local, sums.aggregated, sums.aggregated - sums.local))
    }
}
