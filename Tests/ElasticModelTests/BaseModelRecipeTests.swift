import ElasticModel
import Foundation
import Learning
import Testing

/// The one base-model recipe (demo, `model build`, `model train-base`, fixtures), trained for real on a small slice.
struct BaseModelRecipeTests {
    static let architecture = Architecture.resnet(widths: [4, 8, 8], blocksPerStage: [1, 1, 1])

    @Test func defaultsAreTheSharedRecipe() {
        let r = BaseModelRecipe(steps: 600)
        #expect(r.batchSize == 64 && r.learningRate == 0.05 && r.momentum == 0.9 && r.weightDecay == 5e-4)
        #expect(r.warmupSteps == 50)
        #expect(BaseModelRecipe(steps: 150).warmupSteps == 15)
        #expect(BaseModelRecipe(steps: 500, warmupSteps: 20).warmupSteps == 20)
    }

    @Test func itsNetworkLearnsWellAboveChanceAndTheSameSeedTrainsTheSameWeights() throws {
        let train = try FashionMNIST.load(split: .train, limit: 1024)
        let test = try FashionMNIST.load(split: .test, limit: 300)
        let recipe = BaseModelRecipe(steps: 80, batchSize: 32, seed: 5)
        let model = Self.architecture.makeModel(seed: 2)
        let untrained = Trainer.accuracy(model, test)
        var steps: [Int] = []
        let report = recipe.train(model, on: train) { step, _ in steps.append(step) }
        #expect(steps == Array(0..<80))
        #expect(report.steps == 80 && report.lastLoss.isFinite)
        let trained = Trainer.accuracy(model, test)
        // Ten classes: chance is 0.1. Eighty small steps reach well above it (about 0.6 on this slice).
        #expect(trained > 0.35, "accuracy \(trained) after training (\(untrained) before)")
        #expect(trained > untrained + 0.15)

        let again = Self.architecture.makeModel(seed: 2)
        recipe.train(again, on: train)
        #expect(again.namedTensors() == model.namedTensors(), "the same recipe and seeds must train the same weights")
    }
}
