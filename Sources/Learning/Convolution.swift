/// The geometry of a 2-D convolution (stride, padding, groups; depthwise when groups == channels) and its
/// dispatch to one of three algorithms: ungrouped convolutions per sample through one GEMM each
/// (`Convolution+GEMM.swift`), grouped ones batched over the minibatch with one GEMM per group (same file),
/// depthwise ones as direct loops (`Convolution+Depthwise.swift`). Both GEMM paths share one im2col/col2im walk
/// (`Convolution+Im2col.swift`). Stateless: weights come in as pointers, scratch from a `Workspace`.
public struct Convolution: Sendable, Equatable {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, groups: Int

    public init(in inChannels: Int, out outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1) {
        precondition(groups >= 1 && inChannels % groups == 0 && outChannels % groups == 0, "channels must divide into groups")
        precondition(kernel >= 1 && stride >= 1 && padding >= 0)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
    }

    /// Floats in the weight (Co, C/g, K, K).
    public var weightCount: Int { outChannels * inChannels / groups * kernel * kernel }

    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }

    var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    var isDepthwise: Bool { groups == inChannels && outChannels == inChannels && groups > 1 }

    // x (N, C, H, W), weight (Co, C/g, K, K), bias (Co) -> y (N, Co, Ho, Wo) = activation(W ∗ x + bias)
    /// `activation` (ReLU or a clip only) is applied in the same pass as the bias: the fused inference path of
    /// conv → batch norm → ReLU. `threads` lanes split the samples of an ungrouped convolution.
    func forward(_ x: Tensor, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation? = nil,
                 workspace: Workspace, threads: Int = 1) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(x.shape.count == 4 && c == inChannels, "conv expects (N, \(inChannels), H, W), got \(x.shape)")
        let (ho, wo) = outputSize(h, w)
        precondition(ho >= 1 && wo >= 1, "conv output of \(x.shape) would be empty")
        let clamp = activation.map(Self.clampBounds)
        let ungrouped = groups == 1 && !isDepthwise
        // The ungrouped path writes every output (GEMM with β = 0); the others accumulate into zeros.
        var y = ungrouped ? Self.uninitialized(n * outChannels * ho * wo) : [Float](repeating: 0, count: n * outChannels * ho * wo)
        x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let (xb, yb) = (xp.baseAddress!, yp.baseAddress!)
            if ungrouped {
                forwardPerSample(yb, xb, weight, bias: bias, clamp: clamp, n: n, h: h, w: w, ho: ho, wo: wo,
                                 workspace: workspace, threads: threads)
                return
            }
            if isDepthwise {
                forwardDepthwise(yb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo)
            } else {
                forwardGrouped(yb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo, workspace: workspace)
            }
            epilogue(yb, bias: bias, clamp: clamp, samples: 0..<n, p: ho * wo)
        } }
        return Tensor(shape: [n, outChannels, ho, wo], data: y)
    }

    /// The weight and bias of this convolution followed by an evaluation-mode batch norm, as one convolution:
    /// W'[o] = W[o]·γ[o]/σ[o], b'[o] = (b[o] − μ[o])·γ[o]/σ[o] + β[o] with σ = √(var + eps) (as `Normalization`).
    func folded(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                mean: UnsafePointer<Float>, variance: UnsafePointer<Float>, eps: Float) -> (weight: [Float], bias: [Float]) {
        let perOutput = weightCount / outChannels
        var w = Self.uninitialized(weightCount), b = Self.uninitialized(outChannels)
        for o in 0..<outChannels {
            // As Normalization.forward's evaluation mode: y = x·scale + shift.
            let inv = 1 / (variance[o] + eps).squareRoot()
            let scale = gamma[o] * inv, shift = beta[o] - mean[o] * gamma[o] * inv
            for k in 0..<perOutput { w[o * perOutput + k] = weight[o * perOutput + k] * scale }
            b[o] = (bias?[o] ?? 0) * scale + shift
        }
        return (w, b)
    }

    /// The [lo, hi] an activation clamps to; only ReLU and clips fuse into a convolution.
    static func clampBounds(_ activation: Activation) -> (Float, Float) {
        switch activation {
        case .relu: return (0, .infinity)
        case .clip(let lo, let hi): return (lo, hi)
        default: preconditionFailure("only ReLU and clip fuse into a convolution, not \(activation)")
        }
    }

    /// Whether `activation` can be applied by `forward` itself.
    static func fuses(_ activation: Activation) -> Bool {
        switch activation {
        case .relu, .clip: return true
        default: return false
        }
    }

    /// `count` floats whose every element the caller writes before reading.
    static func uninitialized(_ count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    // dy (N, Co, Ho, Wo) -> dx (N, C, H, W); dW += dy·colᵀ when the input was kept and dW is given; db += Σ dy.
    /// Without `inputGradient` (a first layer, whose input is data), dx is not computed and comes back zero.
    func backward(_ dy: Tensor, input: Tensor?, inputShape: [Int], weight: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                  dBias: UnsafeMutablePointer<Float>?, inputGradient: Bool = true, workspace: Workspace, threads: Int = 1) -> Tensor {
        let (n, _, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (ho, wo) = (dy.shape[2], dy.shape[3])
        var dx = [Float](repeating: 0, count: inputShape.reduce(1, *))
        let saved = input?.data ?? []
        let dWeight = input == nil ? nil : dWeight
        dy.data.withUnsafeBufferPointer { dyp in dx.withUnsafeMutableBufferPointer { dxp in saved.withUnsafeBufferPointer { xp in
            let (dyb, dxb) = (dyp.baseAddress!, dxp.baseAddress!)
            let xb = dWeight == nil ? nil : xp.baseAddress
            if isDepthwise {
                backwardDepthwise(dxb, dWeight, dyb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo)
            } else if groups == 1 {
                backwardPerSample(inputGradient ? dxb : nil, dWeight, dyb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo,
                                  workspace: workspace, threads: threads)
            } else {
                backwardGrouped(dxb, dWeight, dyb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo, workspace: workspace)
            }
            if let dBias { accumulateBiasGradient(dBias, dyb, n: n, p: ho * wo) }
        } } }
        return Tensor(shape: inputShape, data: dx)
    }

    /// y (N, Co, P) of `samples`: += bias per output channel, then clamped to [lo, hi], in one pass.
    func epilogue(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, clamp: (Float, Float)?, samples: Range<Int>, p: Int) {
        guard bias != nil || clamp != nil else { return }
        for i in samples { for o in 0..<outChannels {
            let row = y + (i * outChannels + o) * p
            let v = bias?[o] ?? 0
            if let clamp {
                let (lo, hi) = clamp
                for k in 0..<p { row[k] = min(max(row[k] + v, lo), hi) }
            } else {
                for k in 0..<p { row[k] += v }
            }
        } }
    }

    /// db (Co) += Σ dy over samples and positions.
    func accumulateBiasGradient(_ db: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, n: Int, p: Int) {
        for i in 0..<n { for o in 0..<outChannels {
            var s: Float = 0
            let row = dy + (i * outChannels + o) * p
            for k in 0..<p { s += row[k] }
            db[o] += s
        } }
    }
}
