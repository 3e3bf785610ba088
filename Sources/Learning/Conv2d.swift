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

    /// The layer's name in the parameter store (its weight's name without `.weight`).
    public var name: String { String(store.entries[weightID].name.dropLast(".weight".count)) }

    /// y (N, Co, P) += bias per output channel, for every path (batched, per sample, depthwise).
    func addBias(_ y: inout [Float], n: Int, p: Int) {
        guard let biasID else { return }
        let bo = store.entries[biasID].offset
        for i in 0..<n { for o in 0..<outChannels {
            let v = store.values[bo + o]
            let base = (i * outChannels + o) * p
            for k in 0..<p { y[base + k] += v }
        } }
    }

    /// db += Σ dy over samples and positions, when the bias trains.
    func accumulateBiasGradient(_ dy: Tensor, n: Int, p: Int) {
        guard let biasID, store.isTrainable(biasID) else { return }
        let bo = store.entries[biasID].offset
        for i in 0..<n { for o in 0..<outChannels {
            var s: Float = 0
            let base = (i * outChannels + o) * p
            for k in 0..<p { s += dy.data[base + k] }
            store.grads[bo + o] += s
        } }
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
        if groups == 1 { return forwardPerSample(x, n: n, c: c, h: h, w: w, ho: ho, wo: wo) }
        if isDepthwise { return forwardDepthwise(x, n: n, c: c, h: h, w: w, ho: ho, wo: wo) }
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
        addBias(&y, n: n, p: p)
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
        if groups == 1 { return backwardPerSample(dy, n: n, c: c, h: h, w: w, ho: ho, wo: wo) }
        if isDepthwise { return backwardDepthwise(dy, n: n, c: c, h: h, w: w, ho: ho, wo: wo) }
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
        accumulateBiasGradient(dy, n: n, p: p)
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

/// Ungrouped convolutions one sample at a time: the column matrix of one image (Cin·K·K × P) stays in cache, the
/// GEMM writes the output in its final (N, Co, P) layout (no transpose), and a 1×1 stride-1 convolution needs no
/// column matrix at all (the image is one already). Grouped and depthwise convolutions keep the batched path,
/// where one GEMM per group amortises the call over the whole batch.
extension Conv2d {
    var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    func forwardPerSample(_ x: Tensor, n: Int, c: Int, h: Int, w: Int, ho: Int, wo: Int) -> Tensor {
        let p = ho * wo, rows = c * kernel * kernel
        let co = outChannels
        var y = [Float](repeating: 0, count: n * co * p)
        var col = [Float](repeating: 0, count: isPointwise ? 0 : rows * p)
        let wOffset = store.entries[weightID].offset
        store.values.withUnsafeBufferPointer { wp in x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            col.withUnsafeMutableBufferPointer { cp in
                for i in 0..<n {
                    let xi = xp.baseAddress! + i * c * h * w
                    let b: UnsafePointer<Float>
                    if isPointwise { b = UnsafePointer(xi) } else {
                        im2colSample(xi, c: c, h: h, w: w, ho: ho, wo: wo, col: cp.baseAddress!)
                        b = UnsafePointer(cp.baseAddress!)
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(co), Int32(p), Int32(rows), 1,
                                wp.baseAddress! + wOffset, Int32(rows), b, Int32(p), 0, yp.baseAddress! + i * co * p, Int32(p))
                }
            }
        } } }
        addBias(&y, n: n, p: p)
        return Tensor(shape: [n, co, ho, wo], data: y)
    }

    func backwardPerSample(_ dy: Tensor, n: Int, c: Int, h: Int, w: Int, ho: Int, wo: Int) -> Tensor {
        let p = ho * wo, rows = c * kernel * kernel
        let co = outChannels
        let wOffset = store.entries[weightID].offset
        var dx = [Float](repeating: 0, count: n * c * h * w)
        var col = [Float](repeating: 0, count: isPointwise ? 0 : rows * p)
        var dcol = [Float](repeating: 0, count: isPointwise ? 0 : rows * p)
        let saved = input
        store.values.withUnsafeBufferPointer { wp in store.grads.withUnsafeMutableBufferPointer { gp in
            dy.data.withUnsafeBufferPointer { dyp in dx.withUnsafeMutableBufferPointer { dxp in
                col.withUnsafeMutableBufferPointer { cp in dcol.withUnsafeMutableBufferPointer { dcp in
                    for i in 0..<n {
                        let dyi = dyp.baseAddress! + i * co * p
                        let dxi = dxp.baseAddress! + i * c * h * w
                        if let saved {
                            // dW += dy_i · col_iᵀ
                            saved.data.withUnsafeBufferPointer { xp in
                                let xi = xp.baseAddress! + i * c * h * w
                                let b: UnsafePointer<Float>
                                if isPointwise { b = xi } else {
                                    im2colSample(xi, c: c, h: h, w: w, ho: ho, wo: wo, col: cp.baseAddress!)
                                    b = UnsafePointer(cp.baseAddress!)
                                }
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(co), Int32(rows), Int32(p), 1,
                                            dyi, Int32(p), b, Int32(p), 1, gp.baseAddress! + wOffset, Int32(rows))
                            }
                        }
                        // dcol_i = Wᵀ · dy_i, scattered back into dx_i (directly dx_i for pointwise).
                        let target = isPointwise ? dxi : dcp.baseAddress!
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(p), Int32(co), 1,
                                    wp.baseAddress! + wOffset, Int32(rows), dyi, Int32(p), 0, target, Int32(p))
                        if !isPointwise { col2imSample(UnsafePointer(dcp.baseAddress!), c: c, h: h, w: w, ho: ho, wo: wo, dx: dxi) }
                    }
                } }
            } }
        } }
        accumulateBiasGradient(dy, n: n, p: p)
        return Tensor(shape: inputShape, data: dx)
    }

    /// One image: col[(ci·K + ky)·K + kx, oy·Wo + ox] = x[ci, oy·s − pad + ky, ox·s − pad + kx] (0 outside).
    func im2colSample(_ x: UnsafePointer<Float>, c: Int, h: Int, w: Int, ho: Int, wo: Int, col: UnsafeMutablePointer<Float>) {
        var idx = 0
        for ci in 0..<c {
            let plane = x + ci * h * w
            for ky in 0..<kernel { for kx in 0..<kernel {
                for oy in 0..<ho {
                    let iy = oy * stride - padding + ky
                    if iy < 0 || iy >= h {
                        (col + idx).update(repeating: 0, count: wo)
                        idx += wo
                        continue
                    }
                    let src = plane + iy * w
                    if stride == 1 {
                        // Contiguous run: zero the padded ends, copy the valid middle in one move.
                        let shift = kx - padding                       // ix = ox + shift
                        let lo = max(0, -shift), hi = min(wo, w - shift)
                        let dst = col + idx
                        if lo > 0 { dst.update(repeating: 0, count: min(lo, wo)) }
                        if hi > lo { (dst + lo).update(from: src + lo + shift, count: hi - lo) }
                        if hi < wo { (dst + max(hi, lo)).update(repeating: 0, count: wo - max(hi, lo)) }
                        idx += wo
                    } else {
                        for ox in 0..<wo {
                            let ix = ox * stride - padding + kx
                            col[idx] = (ix >= 0 && ix < w) ? src[ix] : 0
                            idx += 1
                        }
                    }
                }
            } }
        }
    }

    /// The adjoint of `im2colSample` for one image: adds each column entry back where it came from.
    func col2imSample(_ col: UnsafePointer<Float>, c: Int, h: Int, w: Int, ho: Int, wo: Int, dx: UnsafeMutablePointer<Float>) {
        var idx = 0
        for ci in 0..<c {
            let plane = dx + ci * h * w
            for ky in 0..<kernel { for kx in 0..<kernel {
                for oy in 0..<ho {
                    let iy = oy * stride - padding + ky
                    if iy < 0 || iy >= h { idx += wo; continue }
                    let dst = plane + iy * w
                    if stride == 1 {
                        // Only the valid run: no bounds test per element.
                        let shift = kx - padding
                        let lo = max(0, -shift), hi = min(wo, w - shift)
                        if hi > lo {
                            let d = dst + lo + shift, c = col + idx + lo
                            for k in 0..<(hi - lo) { d[k] += c[k] }
                        }
                        idx += wo
                        continue
                    }
                    for ox in 0..<wo {
                        let ix = ox * stride - padding + kx
                        if ix >= 0 && ix < w { dst[ix] += col[idx] }
                        idx += 1
                    }
                }
            } }
        }
    }
}

/// Depthwise convolutions (one filter per channel) as direct loops: a GEMM per channel would have one row, and
/// each tap is a run over an output row that the compiler vectorises.
extension Conv2d {
    var isDepthwise: Bool { groups == inChannels && outChannels == inChannels && groups > 1 }

    /// Output columns ox whose input column ox·stride + shift lies inside [0, w).
    func validColumns(shift: Int, w: Int, wo: Int) -> Range<Int> {
        let lo = shift >= 0 ? 0 : (-shift + stride - 1) / stride
        let hi = min(wo, w - 1 - shift < 0 ? 0 : (w - 1 - shift) / stride + 1)
        return lo..<max(lo, hi)
    }

    func forwardDepthwise(_ x: Tensor, n: Int, c: Int, h: Int, w: Int, ho: Int, wo: Int) -> Tensor {
        let k = kernel, p = ho * wo
        var y = [Float](repeating: 0, count: n * c * p)
        let wOffset = store.entries[weightID].offset
        store.values.withUnsafeBufferPointer { wp in x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            for i in 0..<n { for ch in 0..<c {
                let src = xp.baseAddress! + (i * c + ch) * h * w
                let dst = yp.baseAddress! + (i * c + ch) * p
                for ky in 0..<k { for kx in 0..<k {
                    let wv = wp[wOffset + (ch * k + ky) * k + kx]
                    let shift = kx - padding
                    let cols = validColumns(shift: shift, w: w, wo: wo)
                    for oy in 0..<ho {
                        let iy = oy * stride - padding + ky
                        guard iy >= 0 && iy < h else { continue }
                        let row = src + iy * w, out = dst + oy * wo
                        for ox in cols { out[ox] += wv * row[ox * stride + shift] }
                    }
                } }
            } }
        } } }
        addBias(&y, n: n, p: p)
        return Tensor(shape: [n, c, ho, wo], data: y)
    }

    func backwardDepthwise(_ dy: Tensor, n: Int, c: Int, h: Int, w: Int, ho: Int, wo: Int) -> Tensor {
        let k = kernel, p = ho * wo
        var dx = [Float](repeating: 0, count: n * c * h * w)
        let wOffset = store.entries[weightID].offset
        let hasInput = input != nil
        let saved = input?.data ?? []
        store.values.withUnsafeBufferPointer { wp in store.grads.withUnsafeMutableBufferPointer { gp in
            dy.data.withUnsafeBufferPointer { dyp in dx.withUnsafeMutableBufferPointer { dxp in saved.withUnsafeBufferPointer { xp in
                for i in 0..<n { for ch in 0..<c {
                    let d = dyp.baseAddress! + (i * c + ch) * p
                    let dst = dxp.baseAddress! + (i * c + ch) * h * w
                    for ky in 0..<k { for kx in 0..<k {
                        let wi = wOffset + (ch * k + ky) * k + kx
                        let wv = wp[wi]
                        let shift = kx - padding
                        let cols = validColumns(shift: shift, w: w, wo: wo)
                        var gw: Float = 0
                        for oy in 0..<ho {
                            let iy = oy * stride - padding + ky
                            guard iy >= 0 && iy < h else { continue }
                            let drow = d + oy * wo, xrow = dst + iy * w
                            for ox in cols { xrow[ox * stride + shift] += wv * drow[ox] }
                            if hasInput {
                                let src = xp.baseAddress! + (i * c + ch) * h * w + iy * w
                                for ox in cols { gw += drow[ox] * src[ox * stride + shift] }
                            }
                        }
                        if hasInput { gp[wi] += gw }
                    } }
                } }
            } } }
        } }
        accumulateBiasGradient(dy, n: n, p: p)
        return Tensor(shape: inputShape, data: dx)
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
