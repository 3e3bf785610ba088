/// Batch normalisation over (N, H, W) per channel. Training uses batch statistics and updates running
/// averages (momentum 0.1, unbiased variance, as PyTorch); evaluation uses the running statistics.
/// `cumulative` turns the running update into an equal-weight average (for bn-stats re-estimation).
public final class BatchNorm2d: Layer {
    public let channels: Int
    let store: ParameterStore
    public let gammaID: Int, betaID: Int, meanID: Int, varID: Int
    public var momentum: Float = 0.1
    public let eps: Float = 1e-5
    /// When set, batch statistics are used and folded into the running ones as a cumulative average.
    public var cumulativeBatches: Int?
    /// When set, training-mode passes still normalise with the running statistics (adapter-only training).
    public var frozenStatistics = false
    var xhat: [Float] = []       // (N, C, H, W) normalised input
    var invstd: [Float] = []     // (C)
    var shape: [Int] = []
    var usedBatchStats = false

    public init(_ store: ParameterStore, name: String, channels: Int) {
        self.channels = channels
        self.store = store
        gammaID = store.add(name + ".weight", shape: [channels], initial: [Float](repeating: 1, count: channels))
        betaID = store.add(name + ".bias", shape: [channels], initial: [Float](repeating: 0, count: channels))
        meanID = store.add(name + ".running_mean", shape: [channels], initial: [Float](repeating: 0, count: channels), buffer: true)
        varID = store.add(name + ".running_var", shape: [channels], initial: [Float](repeating: 1, count: channels), buffer: true)
    }

    public var savedFloats: Int { xhat.count + invstd.count }

    /// The layer's name in the parameter store (its scale's name without `.weight`).
    public var name: String { String(store.entries[gammaID].name.dropLast(".weight".count)) }

    /// Resets the running statistics (before a bn-stats re-estimation).
    public func resetRunningStatistics() {
        let m = store.entries[meanID].offset, v = store.entries[varID].offset
        for c in 0..<channels { store.buffers[m + c] = 0; store.buffers[v + c] = 1 }
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let hw = h * w, m = n * hw
        shape = x.shape
        let g = store.entries[gammaID].offset, b = store.entries[betaID].offset
        let rm = store.entries[meanID].offset, rv = store.entries[varID].offset
        var y = [Float](repeating: 0, count: x.count)
        // x̂ is kept for backward only in training; evaluation writes y alone.
        var xhat = [Float](repeating: 0, count: training ? x.count : 0)
        var invstd = [Float](repeating: 0, count: c)
        defer { self.xhat = xhat; self.invstd = invstd }
        usedBatchStats = (training && !frozenStatistics) || cumulativeBatches != nil
        x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in xhat.withUnsafeMutableBufferPointer { hp in
            for ch in 0..<c {
                var mean: Float, variance: Float
                if usedBatchStats {
                    var s: Double = 0, s2: Double = 0
                    for i in 0..<n {
                        let base = (i * c + ch) * hw
                        var a: Float = 0, a2: Float = 0   // per-plane float sums, accumulated in double across planes
                        for k in 0..<hw { let v = xp[base + k]; a += v; a2 += v * v }
                        s += Double(a); s2 += Double(a2)
                    }
                    let md = s / Double(m)
                    mean = Float(md)
                    variance = Float(max(s2 / Double(m) - md * md, 0))
                    let unbiased = m > 1 ? variance * Float(m) / Float(m - 1) : variance
                    if let k = cumulativeBatches {
                        let f = 1 / Float(k + 1)
                        store.buffers[rm + ch] = (1 - f) * store.buffers[rm + ch] + f * mean
                        store.buffers[rv + ch] = (1 - f) * store.buffers[rv + ch] + f * unbiased
                    } else if training {
                        store.buffers[rm + ch] = (1 - momentum) * store.buffers[rm + ch] + momentum * mean
                        store.buffers[rv + ch] = (1 - momentum) * store.buffers[rv + ch] + momentum * unbiased
                    }
                } else {
                    mean = store.buffers[rm + ch]
                    variance = store.buffers[rv + ch]
                }
                let inv = 1 / (variance + eps).squareRoot()
                invstd[ch] = inv
                let gamma = store.values[g + ch], beta = store.values[b + ch]
                for i in 0..<n {
                    let base = (i * c + ch) * hw
                    if training {
                        for k in 0..<hw {
                            let xh = (xp[base + k] - mean) * inv
                            hp[base + k] = xh
                            yp[base + k] = gamma * xh + beta
                        }
                    } else {
                        let scale = gamma * inv, shift = beta - mean * gamma * inv
                        for k in 0..<hw { yp[base + k] = xp[base + k] * scale + shift }
                    }
                }
            }
        } } }
        if let k = cumulativeBatches { cumulativeBatches = k + 1 }
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let hw = h * w, m = Float(n * hw)
        let g = store.entries[gammaID].offset, b = store.entries[betaID].offset
        let trainGamma = store.isTrainable(gammaID), trainBeta = store.isTrainable(betaID)
        var dx = [Float](repeating: 0, count: dy.count)
        let xhat = self.xhat, invstd = self.invstd
        let savedForBackward = xhat.count == dy.count
        let usedBatchStats = self.usedBatchStats && savedForBackward
        dy.data.withUnsafeBufferPointer { dp in xhat.withUnsafeBufferPointer { hp in dx.withUnsafeMutableBufferPointer { xp in
            for ch in 0..<c {
                var sumDy: Float = 0, sumDyXhat: Float = 0
                for i in 0..<n where savedForBackward {
                    let base = (i * c + ch) * hw
                    for k in 0..<hw { sumDy += dp[base + k]; sumDyXhat += dp[base + k] * hp[base + k] }
                }
                // After an evaluation-mode forward nothing was saved: only dx flows (as for a convolution, whose
                // input is kept only when training).
                if trainGamma && savedForBackward { store.grads[g + ch] += sumDyXhat }
                if trainBeta && savedForBackward { store.grads[b + ch] += sumDy }
                let gamma = store.values[g + ch], inv = invstd[ch]
                for i in 0..<n {
                    let base = (i * c + ch) * hw
                    if usedBatchStats {
                        // dx = γ·invstd/M · (M·dy − Σdy − x̂·Σ(dy·x̂))
                        let a = gamma * inv, meanDy = sumDy / m, meanDyXhat = sumDyXhat / m
                        for k in 0..<hw { xp[base + k] = a * (dp[base + k] - meanDy - hp[base + k] * meanDyXhat) }
                    } else {
                        let a = gamma * inv
                        for k in 0..<hw { xp[base + k] = a * dp[base + k] }
                    }
                }
            }
        } } }
        return Tensor(shape: shape, data: dx)
    }
}
