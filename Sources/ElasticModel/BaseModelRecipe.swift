import Learning

/// How a base model learns clean labelled images before an elastic package is derived from it: SGD with Nesterov
/// momentum and weight decay under a warmed-up cosine schedule, with seeded shuffling. One recipe, so the demo,
/// `fleetadapt model build`, `fleetadapt model train-base` and the test fixtures train the same way.
public struct BaseModelRecipe: Sendable, Equatable {
    public var steps: Int
    public var batchSize: Int
    /// The peak learning rate, reached after `warmupSteps` and then decayed along a cosine to zero at `steps`.
    public var learningRate: Float
    public var warmupSteps: Int
    public var momentum: Float
    public var weightDecay: Float
    /// Seed of the shuffling (the model's initialisation has its own seed, given where the model is made).
    public var seed: UInt64

    /// - Parameter warmupSteps: defaults to a tenth of `steps`, at most 50.
    public init(steps: Int, batchSize: Int = 64, learningRate: Float = 0.05, warmupSteps: Int? = nil,
                momentum: Float = 0.9, weightDecay: Float = 5e-4, seed: UInt64 = 0) {
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps ?? min(50, steps / 10)
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.seed = seed
    }

    /// Trains `model` in place on `data` (which must carry labels); `progress` sees each step's index and loss.
    @discardableResult
    public func train(_ model: Model, on data: LabeledImages, progress: ((Int, Float) -> Void)? = nil) -> Trainer.Report {
        let optimizer = Optimizer(model.store, kind: .sgd(momentum: momentum, nesterov: true), learningRate: learningRate,
                                  weightDecay: weightDecay)
        return Trainer.train(model, on: data, steps: steps, batchSize: batchSize, optimizer: optimizer,
                             schedule: CosineSchedule(base: learningRate, total: steps, warmup: warmupSteps), seed: seed,
                             progress: progress)
    }
}
