internal import COpenBLAS

/// 2-D convolution (stride, padding, groups; depthwise when groups == channels) by im2col and `cblas_sgemm`,
/// batched over the whole minibatch: one (C/g·K·K, N·Ho·Wo) column matrix per group, one GEMM per group.
public final class Conv2d: Layer {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, groups: Int
    let store: ParameterStore
    public let weightID: Int
    public let biasID: Int?
    var input: Tensor?          // (N, C, H, W), kept only when the weight trains
    var inputShape: [Int] = []

    public init(_ store: ParameterStore, name: String, in inChannels: Int, out outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, groups: Int = 1, bias: Bool = false, rng: inout SeededRandom, zeroInit: Bool = false) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.store = store
        // PyTorch's default: kaiming_uniform(a=√5) → U(−1/√fan_in, 1/√fan_in) for weights and bias.
        let fanIn = inChannels / groups * kernel * kernel
        let bound = 1 / Float(fanIn).squareRoot()
        let count = outChannels * fanIn
        let w = zeroInit ? [Float](repeating: 0, count: count) : (0..<count).map { _ in rng.uniform(-bound, bound) }
        weightID = store.add(name + ".weight", shape: [outChannels, inChannels / groups, kernel, kernel], initial: w)
        biasID = bias ? store.add(name + ".bias", shape: [outChannels], initial: (0..<outChannels).map { _ in zeroInit ? 0 : rng.uniform(-bound, bound) }) : nil
    }

    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }

    public var savedFloats: Int { input?.count ?? 0 }

    // x (N, C, H, W) -> y (N, Co, Ho, Wo)
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(c == inChannels, "conv expects \(inChannels) channels, got \(c)")
        let (ho, wo) = outputSize(h, w)
        let p = ho * wo
        let cg = c / groups, og = outChannels / groups
        let rows = cg * kernel * kernel
        inputShape = x.shape
        input = training && store.isTrainable(weightID) ? x : nil
        var y = [Float](repeating: 0, count: n * outChannels * p)
        var col = [Float](repeating: 0, count: rows * n * p)     // (Cg·K·K, N·P)
        var out = [Float](repeating: 0, count: og * n * p)       // (Og, N·P)
        let wOffset = store.entries[weightID].offset
        for g in 0..<groups {
            im2col(x.data, n: n, c: c, h: h, w: w, group: g, cg: cg, ho: ho, wo: wo, col: &col)
            store.values.withUnsafeBufferPointer { wp in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(og), Int32(n * p), Int32(rows), 1,
                            wp.baseAddress! + wOffset + g * og * rows, Int32(rows), col, Int32(n * p), 0, &out, Int32(n * p))
            }
            // (Og, N·P) -> (N, Co, P)
            for o in 0..<og {
                for i in 0..<n {
                    let src = o * n * p + i * p
                    let dst = (i * outChannels + g * og + o) * p
                    for k in 0..<p { y[dst + k] = out[src + k] }
                }
            }
        }
        if let biasID {
            let b = store.entries[biasID].offset
            for i in 0..<n { for o in 0..<outChannels {
                let v = store.values[b + o]
                let base = (i * outChannels + o) * p
                for k in 0..<p { y[base + k] += v }
            } }
        }
        return Tensor(shape: [n, outChannels, ho, wo], data: y)
    }

    // dy (N, Co, Ho, Wo) -> dx (N, C, H, W); dW += dy·colᵀ, db += Σ dy when trainable
    public func backward(_ dy: Tensor) -> Tensor {
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (ho, wo) = (dy.shape[2], dy.shape[3])
        let p = ho * wo
        let cg = c / groups, og = outChannels / groups
        let rows = cg * kernel * kernel
        let wOffset = store.entries[weightID].offset
        var dx = [Float](repeating: 0, count: n * c * h * w)
        var dout = [Float](repeating: 0, count: og * n * p)      // (Og, N·P)
        var dcol = [Float](repeating: 0, count: rows * n * p)
        var col = [Float](repeating: 0, count: input == nil ? 0 : rows * n * p)
        for g in 0..<groups {
            for o in 0..<og { for i in 0..<n {
                let src = (i * outChannels + g * og + o) * p
                let dst = o * n * p + i * p
                for k in 0..<p { dout[dst + k] = dy.data[src + k] }
            } }
            if let input {
                im2col(input.data, n: n, c: c, h: h, w: w, group: g, cg: cg, ho: ho, wo: wo, col: &col)
                store.grads.withUnsafeMutableBufferPointer { gp in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(og), Int32(rows), Int32(n * p), 1,
                                dout, Int32(n * p), col, Int32(n * p), 1, gp.baseAddress! + wOffset + g * og * rows, Int32(rows))
                }
            }
            store.values.withUnsafeBufferPointer { wp in
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(n * p), Int32(og), 1,
                            wp.baseAddress! + wOffset + g * og * rows, Int32(rows), dout, Int32(n * p), 0, &dcol, Int32(n * p))
            }
            col2im(dcol, n: n, c: c, h: h, w: w, group: g, cg: cg, ho: ho, wo: wo, dx: &dx)
        }
        if let biasID, store.isTrainable(biasID) {
            let b = store.entries[biasID].offset
            for i in 0..<n { for o in 0..<outChannels {
                var s: Float = 0
                let base = (i * outChannels + o) * p
                for k in 0..<p { s += dy.data[base + k] }
                store.grads[b + o] += s
            } }
        }
        return Tensor(shape: inputShape, data: dx)
    }

    /// col[(ci·K + ky)·K + kx, i·P + oy·Wo + ox] = x[i, g·Cg + ci, oy·s − pad + ky, ox·s − pad + kx] (0 outside).
    func im2col(_ x: [Float], n: Int, c: Int, h: Int, w: Int, group g: Int, cg: Int, ho: Int, wo: Int, col: inout [Float]) {
        let p = ho * wo
        let np = n * p
        x.withUnsafeBufferPointer { xp in col.withUnsafeMutableBufferPointer { cp in
            for ci in 0..<cg {
                for ky in 0..<kernel { for kx in 0..<kernel {
                    let row = ((ci * kernel + ky) * kernel + kx) * np
                    for i in 0..<n {
                        let plane = (i * c + g * cg + ci) * h * w
                        var idx = row + i * p
                        for oy in 0..<ho {
                            let iy = oy * stride - padding + ky
                            if iy < 0 || iy >= h {
                                for _ in 0..<wo { cp[idx] = 0; idx += 1 }
                                continue
                            }
                            let rowBase = plane + iy * w
                            for ox in 0..<wo {
                                let ix = ox * stride - padding + kx
                                cp[idx] = (ix >= 0 && ix < w) ? xp[rowBase + ix] : 0
                                idx += 1
                            }
                        }
                    }
                } }
            }
        } }
    }

    /// The adjoint of im2col: adds each column entry back to the input position it came from.
    func col2im(_ col: [Float], n: Int, c: Int, h: Int, w: Int, group g: Int, cg: Int, ho: Int, wo: Int, dx: inout [Float]) {
        let p = ho * wo
        let np = n * p
        col.withUnsafeBufferPointer { cp in dx.withUnsafeMutableBufferPointer { xp in
            for ci in 0..<cg {
                for ky in 0..<kernel { for kx in 0..<kernel {
                    let row = ((ci * kernel + ky) * kernel + kx) * np
                    for i in 0..<n {
                        let plane = (i * c + g * cg + ci) * h * w
                        var idx = row + i * p
                        for oy in 0..<ho {
                            let iy = oy * stride - padding + ky
                            if iy < 0 || iy >= h { idx += wo; continue }
                            let rowBase = plane + iy * w
                            for ox in 0..<wo {
                                let ix = ox * stride - padding + kx
                                if ix >= 0 && ix < w { xp[rowBase + ix] += cp[idx] }
                                idx += 1
                            }
                        }
                    }
                } }
            }
        } }
    }
}

/// OpenBLAS threading for this engine's small matrices: one thread per call. Its worker threads spin while
/// waiting, which on a 2-core device (or beside other work) costs more than it saves; callers that run
/// several models at once parallelise across them instead.
enum BLAS {
    static let configured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()
}
