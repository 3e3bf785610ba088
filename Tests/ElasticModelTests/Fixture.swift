import ElasticModel
import Foundation
import Learning
import TestSupport

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
        let built = try! SmallPackage(
            architecture: architecture, name: "fixture", description: "test fixture", trainImages: 3000,
            recipe: BaseModelRecipe(steps: 150, seed: 3), distillImages: 384, distillationSteps: 40,
            calibrationCombinations: 3, validationCombinations: 4, validationImages: 300).build()
        return Built(package: built.package, undistilled: built.report.undistilledAccuracy, validation: built.validation)
    }()
}
