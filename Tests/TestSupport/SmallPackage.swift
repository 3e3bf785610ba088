import ElasticModel
import Foundation
import Learning

/// A small elastic package for tests: a base model trained with the shared recipe on the start of Fashion-MNIST's
/// train split, then derived, distilled and profiled with few steps and timing runs. Real training, real distillation,
/// small enough for CI; the suites that need a package (ElasticModelTests' fixture, the fleet tests) differ only in sizes.
public struct SmallPackage: Sendable {
    public var architecture: Architecture
    public var name: String
    public var description: String
    public var trainImages: Int
    public var recipe: BaseModelRecipe
    /// Seed of the base model's initialisation.
    public var modelSeed: UInt64 = 3
    /// Train-split images the variants are distilled on (the first ones).
    public var distillImages: Int
    public var distillationSteps: Int
    public var calibrationCombinations: Int
    public var validationCombinations: Int
    /// Test-split images the estimator measures on.
    public var validationImages: Int

    public init(architecture: Architecture, name: String, description: String, trainImages: Int, recipe: BaseModelRecipe,
                distillImages: Int, distillationSteps: Int, calibrationCombinations: Int, validationCombinations: Int,
                validationImages: Int) {
        self.architecture = architecture
        self.name = name
        self.description = description
        self.trainImages = trainImages
        self.recipe = recipe
        self.distillImages = distillImages
        self.distillationSteps = distillationSteps
        self.calibrationCombinations = calibrationCombinations
        self.validationCombinations = validationCombinations
        self.validationImages = validationImages
    }

    public struct Built: Sendable {
        public let package: ElasticPackage
        public let report: ElasticBuilder.Report
        public let validation: LabeledImages
    }

    public func build() throws -> Built {
        let train = try FashionMNIST.load(split: .train, limit: trainImages)
        let validation = try FashionMNIST.load(split: .test, limit: validationImages)
        let base = architecture.makeModel(seed: modelSeed)
        recipe.train(base, on: train)
        var options = ElasticBuilder.Options()
        options.distillationSteps = distillationSteps
        options.latencyRuns = 3
        options.warmupRuns = 1
        options.calibrationCombinations = calibrationCombinations
        options.validationCombinations = validationCombinations
        let (package, report) = try ElasticBuilder.build(
            base: base, architecture: architecture, name: name,
            baseInfo: .init(description: description, trainImages: trainImages, trainSteps: recipe.steps),
            distillation: train.subset(0..<distillImages), validation: validation, options: options)
        return Built(package: package, report: report, validation: validation)
    }
}
