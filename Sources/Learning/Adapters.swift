/// Kinds of residual adapter a block position can carry.
public enum AdapterKind: String, Codable, Sendable, CaseIterable {
    /// Rebuffi et al.: a 1×1 convolution beside the block, from its input to its output shape.
    case parallel
    /// TinyTL's lite residual: 2×2 average pool, grouped 3×3 conv, ReLU, 1×1 conv, nearest upsample.
    case liteResidual = "lite-residual"
}

/// Builds an adapter whose last convolution starts at zero, so an untrained adapter adds exactly 0 and the
/// adapted model's outputs are those of the original.
enum AdapterFactory {
    static func make(_ kind: AdapterKind, _ store: ParameterStore, name: String, inChannels: Int, outChannels: Int, stride: Int,
                     inputSize: (Int, Int), rng: inout SeededRandom) -> Layer {
        let outH = (inputSize.0 - 1) / stride + 1, outW = (inputSize.1 - 1) / stride + 1
        switch kind {
        case .parallel:
            return Conv2d(store, name: name + ".conv", in: inChannels, out: outChannels, kernel: 1, stride: stride, rng: &rng, zeroInit: true)
        case .liteResidual:
            let groups = gcd(inChannels, 8)
            return Sequential([
                Pool2d(.average, kernel: min(2, inputSize.0), stride: min(2, inputSize.0)),
                Conv2d(store, name: name + ".group_conv", in: inChannels, out: inChannels, kernel: 3, padding: 1, groups: groups, rng: &rng),
                ReLU(),
                Conv2d(store, name: name + ".project", in: inChannels, out: outChannels, kernel: 1, rng: &rng, zeroInit: true),
                Upsample(height: outH, width: outW),
            ])
        }
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
