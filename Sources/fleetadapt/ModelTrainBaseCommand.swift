import ArgumentParser
import CommandSupport
import ElasticModel
import Foundation
import Learning

struct ModelTrainBaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-base",
        abstract: "Train a ResNet on clean Fashion-MNIST and write it as a base model file for agents.",
        discussion: HelpText.reflow("""
            Writes one safetensors file: the weights under PyTorch names and the architecture in the metadata.
            Prints the clean test accuracy. Example:
              fleetadapt model train-base --steps 600 --out /tmp/base.safetensors
            """))

    @OptionGroup var shape: ResNetShapeOptions

    @Option(help: "Training steps (SGD, Nesterov momentum 0.9, cosine schedule).")
    var steps: Int = 600

    @Option(help: "Batch size.")
    var batchSize: Int = 64

    @Option(help: "Training images used (from the start of the train split).")
    var trainCount: Int = 20000

    @Option(help: "Initial learning rate.")
    var learningRate: Float = 0.05

    @Option(help: "Seed of initialisation and shuffling.")
    var seed: UInt64 = 0

    @Option(help: "Output file.")
    var out: String

    func validate() throws {
        guard shape.widths.values.count == 3, shape.blocks.values.count == 3 else {
            throw ValidationError("--widths and --blocks take three comma-separated integers")
        }
        guard steps > 0, batchSize > 0, trainCount >= batchSize, learningRate > 0 else { throw ValidationError("steps, batch size, train count and learning rate must be positive") }
    }

    func run() throws {
        let w = shape.widths.values, b = shape.blocks.values
        let train = try FashionMNIST.load(split: .train, limit: trainCount)
        let test = try FashionMNIST.load(split: .test)
        let model = Model.resnet(widths: w, blocksPerStage: b, seed: seed)
        let recipe = BaseModelRecipe(steps: steps, batchSize: batchSize, learningRate: learningRate, seed: seed)
        let report = recipe.train(model, on: train) { step, loss in
            if step % 50 == 0 || step == steps - 1 {
                FileHandle.standardError.write(Data("step \(step + 1)/\(steps) loss \(String(format: "%.3f", loss))\n".utf8))
            }
        }
        let accuracy = Trainer.accuracy(model, test)
        try BaseModelFile.write(model, widths: w, blocksPerStage: b, to: out,
                                extra: ["clean_test_accuracy": String(accuracy), "train_steps": String(steps)])
        print(String(format: "trained %d steps in %.1f s; clean test accuracy %.4f; wrote %@", steps, report.seconds, accuracy, out as NSString))
    }
}
