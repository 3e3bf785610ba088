import ElasticModel
import Foundation
import Learning

/// One small package built once per test process (8/16/32 ResNet, short training): real training, real
/// distillation, real profiles; small enough for CI.
enum Fixture {
    static let architecture = Architecture.resnet(widths: [8, 16, 32], blocksPerStage: [1, 2, 2])

    struct Built: Sendable {
        let package: ElasticPackage
        let undistilled: [[Double]]
        let validation: LabeledImages
    }

    static let built: Built = {
        let train = try! FashionMNIST.load(split: .train, limit: 3000)
        let validation = try! FashionMNIST.load(split: .test, limit: 300)
        let base = architecture.makeModel(seed: 3)
        BaseModelRecipe(steps: 150, seed: 3).train(base, on: train)
        var options = ElasticBuilder.Options()
        options.distillationSteps = 40
        options.latencyRuns = 3
        options.warmupRuns = 1
        options.calibrationCombinations = 3
        options.validationCombinations = 4
        let (package, report) = try! ElasticBuilder.build(
            base: base, architecture: architecture, name: "fixture",
            baseInfo: .init(description: "test fixture", trainImages: 3000, trainSteps: 150),
            distillation: train.subset(0..<384), validation: validation, options: options)
        return Built(package: package, undistilled: report.undistilledAccuracy, validation: validation)
    }()
}
