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

    // x (N, C, H, W), weight (Co, C/g, K, K), bias (Co) -> y (N, Co, Ho, Wo)
    func forward(_ x: Tensor, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, workspace: Workspace) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(x.shape.count == 4 && c == inChannels, "conv expects (N, \(inChannels), H, W), got \(x.shape)")
        let (ho, wo) = outputSize(h, w)
        precondition(ho >= 1 && wo >= 1, "conv output of \(x.shape) would be empty")
        var y = [Float](repeating: 0, count: n * outChannels * ho * wo)
        x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let (xb, yb) = (xp.baseAddress!, yp.baseAddress!)
            if isDepthwise {
                forwardDepthwise(yb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo)
            } else if groups == 1 {
                forwardPerSample(yb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo, workspace: workspace)
            } else {
                forwardGrouped(yb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo, workspace: workspace)
            }
            if let bias { addBias(yb, bias, n: n, p: ho * wo) }
        } }
        return Tensor(shape: [n, outChannels, ho, wo], data: y)
    }

    // dy (N, Co, Ho, Wo) -> dx (N, C, H, W); dW += dy·colᵀ when the input was kept and dW is given; db += Σ dy.
    func backward(_ dy: Tensor, input: Tensor?, inputShape: [Int], weight: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                  dBias: UnsafeMutablePointer<Float>?, workspace: Workspace) -> Tensor {
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
                backwardPerSample(dxb, dWeight, dyb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo, workspace: workspace)
            } else {
                backwardGrouped(dxb, dWeight, dyb, xb, weight, n: n, h: h, w: w, ho: ho, wo: wo, workspace: workspace)
            }
            if let dBias { accumulateBiasGradient(dBias, dyb, n: n, p: ho * wo) }
        } } }
        return Tensor(shape: inputShape, data: dx)
    }

    /// y (N, Co, P) += bias per output channel.
    func addBias(_ y: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, n: Int, p: Int) {
        for i in 0..<n { for o in 0..<outChannels {
            let v = bias[o], row = y + (i * outChannels + o) * p
            for k in 0..<p { row[k] += v }
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
