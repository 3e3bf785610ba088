import Testing
@testable import Learning

/// A network split after any block — prefix on the device, suffix on an edge server — computes exactly the logits of
/// the whole network, and the cut tensor has the shape the edge expects.
@Suite struct SplitForwardTests {
    static func model(_ family: String) -> Model {
        family == "resnet" ? Model.resnet(widths: [8, 16, 24], blocksPerStage: [1, 2, 2], seed: 3)
            : Model.mobileNetV2(stem: 8, stages: [(8, 1, 1), (12, 2, 2), (16, 2, 2)], expansion: 2, seed: 3)
    }

    @Test(arguments: ["resnet", "mobilenetv2"])
    func everySplitEqualsTheWholeNetworkBitForBit(name: String) {
        let model = Self.model(name)
        var rng = SeededRandom(seed: 9)
        let x = Tensor(shape: [3, 1, 28, 28], data: (0..<(3 * 28 * 28)).map { _ in rng.uniform(-1, 1) })
        let whole = model.forward(x, training: false)
        for last in -1..<model.blocks.count {
            let cut = model.forwardPrefix(x, through: last)
            #expect(Array(cut.shape.dropFirst()) == model.featureShape(after: last), "\(name) after \(last)")
            let logits = model.forwardSuffix(cut, after: last)
            #expect(logits.data.map(\.bitPattern) == whole.data.map(\.bitPattern), "\(name) split after \(last)")
        }
    }
}
