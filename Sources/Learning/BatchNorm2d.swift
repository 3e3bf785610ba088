/// Batch-norm arithmetic over (N, H, W) per channel, stateless: statistics in, statistics out.
struct Normalization {
    struct Output {
        var y: Tensor
        /// (N, C, H, W) normalised input, when kept for backward.
        var xhat: [Float]
        var invstd: [Float]
        /// The batch's mean and unbiased variance per channel, when batch statistics normalised.
        var batchMean: [Float], batchVariance: [Float]
    }

    /// Normalises with the batch's statistics, or with `mean`/`variance` (C) when `batchStatistics` is false.
    /// `training` keeps x̂ and computes γ·x̂ + β; otherwise y = x·scale + shift per channel. `threads` lanes split
    /// the channels.
    static func forward(_ x: Tensor, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, mean runningMean: UnsafePointer<Float>,
                        variance runningVariance: UnsafePointer<Float>, eps: Float, batchStatistics: Bool, training: Bool,
                        threads: Int = 1) -> Output {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let hw = h * w, m = n * hw
        // Every element of y, x̂ and the per-channel outputs is written below.
        var y = Convolution.uninitialized(x.count)
        var xhat = Convolution.uninitialized(training ? x.count : 0)
        var invstd = Convolution.uninitialized(c)
        var batchMean = Convolution.uninitialized(batchStatistics ? c : 0)
        var batchVariance = Convolution.uninitialized(batchStatistics ? c : 0)
        x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in xhat.withUnsafeMutableBufferPointer { hp in
        invstd.withUnsafeMutableBufferPointer { ip in batchMean.withUnsafeMutableBufferPointer { mp in
        batchVariance.withUnsafeMutableBufferPointer { vp in
            let (xa, ya, ia) = (Address(xp.baseAddress!), Address(yp.baseAddress!), Address(ip.baseAddress!))
            let ha = hp.baseAddress.map { Address($0) }
            let (ma, va) = (mp.baseAddress.map { Address($0) }, vp.baseAddress.map { Address($0) })
            let (ga, ba, rma, rva) = (Address(gamma), Address(beta), Address(runningMean), Address(runningVariance))
            Lanes.run(c, lanes: Lanes.count(threads, items: c)) { _, channels in
                let xp = xa.pointer, yp = ya.mutable
                for ch in channels {
                    var mean: Float, variance: Float
                    if batchStatistics {
                        var s: Double = 0, s2: Double = 0
                        for i in 0..<n {
                            let base = xp + (i * c + ch) * hw
                            var a: Float = 0, a2: Float = 0   // per-plane float sums, accumulated in double across planes
                            for k in 0..<hw { let v = base[k]; a += v; a2 += v * v }
                            s += Double(a); s2 += Double(a2)
                        }
                        let md = s / Double(m)
                        mean = Float(md)
                        variance = Float(max(s2 / Double(m) - md * md, 0))
                        ma!.mutable[ch] = mean
                        va!.mutable[ch] = m > 1 ? variance * Float(m) / Float(m - 1) : variance
                    } else {
                        mean = rma.pointer[ch]
                        variance = rva.pointer[ch]
                    }
                    let inv = 1 / (variance + eps).squareRoot()
                    ia.mutable[ch] = inv
                    let g = ga.pointer[ch], b = ba.pointer[ch]
                    for i in 0..<n {
                        let base = (i * c + ch) * hw
                        if training, let hp = ha?.mutable {
                            for k in 0..<hw {
                                let xh = (xp[base + k] - mean) * inv
                                hp[base + k] = xh
                                yp[base + k] = g * xh + b
                            }
                        } else {
                            let scale = g * inv, shift = b - mean * g * inv
                            for k in 0..<hw { yp[base + k] = xp[base + k] * scale + shift }
                        }
                    }
                }
            }
        } } } } } }
        return Output(y: Tensor(shape: x.shape, data: y), xhat: xhat, invstd: invstd, batchMean: batchMean, batchVariance: batchVariance)
    }

    /// dy -> dx. With x̂ saved (a training-mode pass), dγ += Σ dy·x̂ and dβ += Σ dy where given, and dx carries
    /// the batch statistics' own gradient when they normalised; after an evaluation-mode pass only dx = γ·invstd·dy.
    /// `threads` lanes split the channels.
    static func backward(_ dy: Tensor, xhat: [Float], invstd: [Float], batchStatistics: Bool, gamma: UnsafePointer<Float>,
                         dGamma: UnsafeMutablePointer<Float>?, dBeta: UnsafeMutablePointer<Float>?, threads: Int = 1) -> Tensor {
        let (n, c, h, w) = (dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3])
        let hw = h * w, m = Float(n * hw)
        var dx = Convolution.uninitialized(dy.count)   // every element written below
        let saved = xhat.count == dy.count
        let batchStatistics = batchStatistics && saved
        dy.data.withUnsafeBufferPointer { dp in xhat.withUnsafeBufferPointer { hp in dx.withUnsafeMutableBufferPointer { xp in
        invstd.withUnsafeBufferPointer { ip in
            let (da, xa, ia, ga) = (Address(dp.baseAddress!), Address(xp.baseAddress!), Address(ip.baseAddress!), Address(gamma))
            let ha = hp.baseAddress.map { Address($0) }
            let (dga, dba) = (dGamma.map { Address($0) }, dBeta.map { Address($0) })
            Lanes.run(c, lanes: Lanes.count(threads, items: c)) { _, channels in
                let dp = da.pointer, xp = xa.mutable
                for ch in channels {
                    var sumDy: Float = 0, sumDyXhat: Float = 0
                    if saved, let hp = ha?.pointer {
                        for i in 0..<n {
                            let base = (i * c + ch) * hw
                            for k in 0..<hw { sumDy += dp[base + k]; sumDyXhat += dp[base + k] * hp[base + k] }
                        }
                        dga?.mutable[ch] += sumDyXhat
                        dba?.mutable[ch] += sumDy
                    }
                    let a = ga.pointer[ch] * ia.pointer[ch]
                    for i in 0..<n {
                        let base = (i * c + ch) * hw
                        if batchStatistics, let hp = ha?.pointer {
                            // dx = γ·invstd/M · (M·dy − Σdy − x̂·Σ(dy·x̂))
                            let meanDy = sumDy / m, meanDyXhat = sumDyXhat / m
                            for k in 0..<hw { xp[base + k] = a * (dp[base + k] - meanDy - hp[base + k] * meanDyXhat) }
                        } else {
                            for k in 0..<hw { xp[base + k] = a * dp[base + k] }
                        }
                    }
                }
            }
        } } } }
        return Tensor(shape: dy.shape, data: dx)
    }
}

/// Batch normalisation over (N, H, W) per channel. Training uses batch statistics and updates running
/// averages (momentum 0.1, unbiased variance, as PyTorch); evaluation uses the running statistics.
/// `cumulative` turns the running update into an equal-weight average (for bn-stats re-estimation).
/// The running statistics and these modes are the layer's (training is single-threaded); what backward needs
/// goes on the caller's tape.
public final class BatchNorm2d: Layer {
    public let channels: Int
    let store: ParameterStore
    public let gammaID: Int, betaID: Int, meanID: Int, varID: Int
    public var momentum: Float = 0.1
    public let eps: Float
    /// When set, batch statistics are used and folded into the running ones as a cumulative average.
    public var cumulativeBatches: Int?
    /// When set, training-mode passes still normalise with the running statistics (adapter-only training).
    public var frozenStatistics = false

    public init(_ store: ParameterStore, name: String, channels: Int) {
        self.channels = channels
        self.store = store
        eps = 1e-5
        gammaID = store.add(name + ".weight", shape: [channels], initial: [Float](repeating: 1, count: channels))
        betaID = store.add(name + ".bias", shape: [channels], initial: [Float](repeating: 0, count: channels))
        meanID = store.add(name + ".running_mean", shape: [channels], initial: [Float](repeating: 0, count: channels), buffer: true)
        varID = store.add(name + ".running_var", shape: [channels], initial: [Float](repeating: 1, count: channels), buffer: true)
    }

    /// The modes of a graph's batch-norm node, whose entries are already in `store`: the graph normalises, this
    /// object carries what `Model.setTrainable` and bn-stats set (frozen statistics, a cumulative re-estimation)
    /// and resets its running statistics, exactly as for a built-in block's batch norm.
    public init(adopting store: ParameterStore, gamma: Int, beta: Int, mean: Int, variance: Int, eps: Float, momentum: Float) {
        channels = store.entries[gamma].count
        self.store = store
        gammaID = gamma
        betaID = beta
        meanID = mean
        varID = variance
        self.eps = eps
        self.momentum = momentum
    }

    /// The layer's name in the parameter store (its scale's name without `.weight`).
    public var name: String {
        let n = store.entries[gammaID].name
        return n.hasSuffix(".weight") ? String(n.dropLast(".weight".count)) : n
    }

    /// Resets the running statistics (before a bn-stats re-estimation).
    public func resetRunningStatistics() {
        let m = store.entries[meanID].offset, v = store.entries[varID].offset
        for c in 0..<channels { store.buffers[m + c] = 0; store.buffers[v + c] = 1 }
    }

    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        let batchStatistics = (training && !frozenStatistics) || cumulativeBatches != nil
        let g = store.entries[gammaID].offset, b = store.entries[betaID].offset
        let rm = store.entries[meanID].offset, rv = store.entries[varID].offset
        let out = store.values.withUnsafeBufferPointer { v in store.buffers.withUnsafeBufferPointer { s in
            Normalization.forward(x, gamma: v.baseAddress! + g, beta: v.baseAddress! + b, mean: s.baseAddress! + rm,
                                  variance: s.baseAddress! + rv, eps: eps, batchStatistics: batchStatistics, training: training,
                                  threads: tape?.threads ?? 1)
        } }
        if batchStatistics, cumulativeBatches != nil || training {
            let f = cumulativeBatches.map { 1 / Float($0 + 1) } ?? momentum
            for ch in 0..<channels {
                store.buffers[rm + ch] = (1 - f) * store.buffers[rm + ch] + f * out.batchMean[ch]
                store.buffers[rv + ch] = (1 - f) * store.buffers[rv + ch] + f * out.batchVariance[ch]
            }
        }
        if let k = cumulativeBatches { cumulativeBatches = k + 1 }
        tape?.push(self, .normalised(xhat: out.xhat, invstd: out.invstd, shape: x.shape, batchStatistics: batchStatistics))
        return out.y
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        guard case .normalised(let xhat, let invstd, _, let batchStatistics) = tape.pop(self) else {
            preconditionFailure("batch norm: foreign tape record")
        }
        let g = store.entries[gammaID].offset, b = store.entries[betaID].offset
        let trainGamma = store.isTrainable(gammaID), trainBeta = store.isTrainable(betaID)
        let values = store.values
        return values.withUnsafeBufferPointer { v in store.grads.withUnsafeMutableBufferPointer { gp in
            Normalization.backward(dy, xhat: xhat, invstd: invstd, batchStatistics: batchStatistics, gamma: v.baseAddress! + g,
                                   dGamma: trainGamma ? gp.baseAddress! + g : nil, dBeta: trainBeta ? gp.baseAddress! + b : nil,
                                   threads: tape.threads)
        } }
    }
}
