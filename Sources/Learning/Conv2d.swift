/// A convolution layer: its `Convolution` geometry and its weight (and optional bias) in the parameter store.
/// The input is saved on the caller's tape, and only when the weight trains (dx needs the weight alone).
public final class Conv2d: Layer {
    public let geometry: Convolution
    let store: ParameterStore
    public let weightID: Int
    public let biasID: Int?
    /// False for a network's first layer, whose input is data: backward then skips dL/dx (and returns zeros).
    public var computesInputGradient = true

    public var inChannels: Int { geometry.inChannels }
    public var outChannels: Int { geometry.outChannels }
    public var kernel: Int { geometry.kernel }
    public var stride: Int { geometry.stride }
    public var padding: Int { geometry.padding }
    public var groups: Int { geometry.groups }

    public init(_ store: ParameterStore, name: String, in inChannels: Int, out outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, groups: Int = 1, bias: Bool = false, rng: inout SeededRandom, zeroInit: Bool = false) {
        geometry = Convolution(in: inChannels, out: outChannels, kernel: kernel, stride: stride, padding: padding, groups: groups)
        self.store = store
        // PyTorch's default: kaiming_uniform(a=√5) → U(−1/√fan_in, 1/√fan_in) for weights and bias.
        let fanIn = inChannels / groups * kernel * kernel
        let bound = 1 / Float(fanIn).squareRoot()
        let count = outChannels * fanIn
        let w = zeroInit ? [Float](repeating: 0, count: count) : (0..<count).map { _ in rng.uniform(-bound, bound) }
        weightID = store.add(name + ".weight", shape: [outChannels, inChannels / groups, kernel, kernel], initial: w)
        biasID = bias ? store.add(name + ".bias", shape: [outChannels], initial: (0..<outChannels).map { _ in zeroInit ? 0 : rng.uniform(-bound, bound) }) : nil
    }

    /// The layer's name in the parameter store (its weight's name without `.weight`).
    public var name: String { String(store.entries[weightID].name.dropLast(".weight".count)) }

    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) { geometry.outputSize(h, w) }

    // x (N, C, H, W) -> y (N, Co, Ho, Wo)
    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        tape?.push(self, .input(store.isTrainable(weightID) ? x : nil, shape: x.shape))
        return store.values.withUnsafeBufferPointer { v in
            geometry.forward(x, weight: v.baseAddress! + store.entries[weightID].offset,
                             bias: biasID.map { v.baseAddress! + store.entries[$0].offset }, workspace: tape?.workspace ?? Workspace(),
                             threads: tape?.threads ?? 1)
        }
    }

    // x (N, C, H, W) -> activation(BN(conv(x))) (N, Co, Ho, Wo) with `norm`'s running statistics, in one pass:
    // W'[o] = W[o]·γ[o]/σ[o], b'[o] = (b[o] − μ[o])·γ[o]/σ[o] + β[o]. Inference only (nothing is saved).
    func forwardFolded(_ x: Tensor, norm: BatchNorm2d, activation: Activation?, tape: Tape?) -> Tensor {
        let e = store.entries
        let (weight, bias) = store.values.withUnsafeBufferPointer { v in store.buffers.withUnsafeBufferPointer { s in
            let (v, s) = (v.baseAddress!, s.baseAddress!)
            return geometry.folded(weight: v + e[weightID].offset, bias: biasID.map { v + e[$0].offset }, gamma: v + e[norm.gammaID].offset,
                                   beta: v + e[norm.betaID].offset, mean: s + e[norm.meanID].offset, variance: s + e[norm.varID].offset,
                                   eps: norm.eps)
        } }
        return weight.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { bp in
            geometry.forward(x, weight: wp.baseAddress!, bias: bp.baseAddress!, activation: activation,
                             workspace: tape?.workspace ?? Workspace(), threads: tape?.threads ?? 1)
        } }
    }

    // dy (N, Co, Ho, Wo) -> dx (N, C, H, W); dW += dy·colᵀ, db += Σ dy where they train
    public func backward(_ dy: Tensor, tape: Tape) -> Tensor { backward(dy, tape: tape, inputGradient: computesInputGradient) }

    /// As `backward`; without `inputGradient`, dx is not computed (zeros come back).
    func backward(_ dy: Tensor, tape: Tape, inputGradient: Bool) -> Tensor {
        guard case .input(let input, let shape) = tape.pop(self) else { preconditionFailure("conv: foreign tape record") }
        let wOffset = store.entries[weightID].offset
        let trainW = store.isTrainable(weightID)
        let bOffset = biasID.flatMap { store.isTrainable($0) ? store.entries[$0].offset : nil }
        let values = store.values
        return values.withUnsafeBufferPointer { v in store.grads.withUnsafeMutableBufferPointer { g in
            geometry.backward(dy, input: input, inputShape: shape, weight: v.baseAddress! + wOffset,
                              dWeight: trainW ? g.baseAddress! + wOffset : nil, dBias: bOffset.map { g.baseAddress! + $0 },
                              inputGradient: inputGradient, workspace: tape.workspace, threads: tape.threads)
        } }
    }
}
