import Foundation

/// Optimisers step over the whole parameter slab in one loop, skipping frozen parameters.
public final class Optimizer {
    public enum Kind: Sendable {
        case sgd(momentum: Float, nesterov: Bool)
        /// Adam; `decoupled` applies weight decay as AdamW does.
        case adam(beta1: Float, beta2: Float, decoupled: Bool)
    }

    public let kind: Kind
    public var learningRate: Float
    public var weightDecay: Float
    let store: ParameterStore
    var m: [Float], v: [Float]
    var t = 0
    let mask: [Bool]   // per value: trainable

    public init(_ store: ParameterStore, kind: Kind, learningRate: Float, weightDecay: Float = 0) {
        self.kind = kind
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.store = store
        m = [Float](repeating: 0, count: store.values.count)
        v = [Float](repeating: 0, count: store.values.count)
        var mask = [Bool](repeating: false, count: store.values.count)
        for (i, e) in store.entries.enumerated() where !e.isBuffer && store.trainable[i] {
            for j in e.offset..<(e.offset + e.count) { mask[j] = true }
        }
        self.mask = mask
    }

    public func step() {
        t += 1
        let lr = learningRate, wd = weightDecay
        store.values.withUnsafeMutableBufferPointer { w in store.grads.withUnsafeBufferPointer { g in
            switch kind {
            case .sgd(let mom, let nesterov):
                for i in w.indices where mask[i] {
                    let d = g[i] + wd * w[i]
                    m[i] = mom * m[i] + d
                    w[i] -= lr * (nesterov ? d + mom * m[i] : m[i])
                }
            case .adam(let b1, let b2, let decoupled):
                let c1 = 1 - powf(b1, Float(t)), c2 = 1 - powf(b2, Float(t))
                for i in w.indices where mask[i] {
                    let d = decoupled ? g[i] : g[i] + wd * w[i]
                    if decoupled { w[i] -= lr * wd * w[i] }
                    m[i] = b1 * m[i] + (1 - b1) * d
                    v[i] = b2 * v[i] + (1 - b2) * d * d
                    w[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + 1e-8)
                }
            }
        } }
    }
}

/// Cosine decay from `base` to 0 over `total` steps, after a linear warm-up.
public struct CosineSchedule: Sendable {
    public let base: Float, total: Int, warmup: Int

    public init(base: Float, total: Int, warmup: Int = 0) {
        self.base = base
        self.total = total
        self.warmup = warmup
    }

    public func rate(at step: Int) -> Float {
        if step < warmup { return base * Float(step + 1) / Float(warmup) }
        let progress = Float(step - warmup) / Float(max(1, total - warmup))
        return base * 0.5 * (1 + cosf(.pi * min(1, progress)))
    }
}
