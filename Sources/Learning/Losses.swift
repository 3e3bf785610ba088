import Foundation

/// Losses on logits (N, K), each returning the mean loss and dL/dlogits side by side.
public enum Losses {
    /// Row-wise softmax, computed stably.
    public static func softmax(_ logits: Tensor) -> [Float] {
        let (n, k) = (logits.shape[0], logits.shape[1])
        var p = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            var m = -Float.infinity
            for j in 0..<k { m = max(m, logits.data[i * k + j]) }
            var s: Float = 0
            for j in 0..<k { let e = expf(logits.data[i * k + j] - m); p[i * k + j] = e; s += e }
            for j in 0..<k { p[i * k + j] /= s }
        }
        return p
    }

    /// Mean softmax cross-entropy against integer labels; dL/dz = (p − onehot)/N.
    public static func crossEntropy(_ logits: Tensor, labels: [Int]) -> (loss: Float, grad: Tensor) {
        let (n, k) = (logits.shape[0], logits.shape[1])
        var p = softmax(logits)
        var loss: Float = 0
        for i in 0..<n {
            loss -= logf(max(p[i * k + labels[i]], 1e-30))
            p[i * k + labels[i]] -= 1
        }
        for j in p.indices { p[j] /= Float(n) }
        return (loss / Float(n), Tensor(shape: logits.shape, data: p))
    }

    /// Per-sample entropy H_i = −Σ p log p.
    public static func entropies(_ p: [Float], n: Int, k: Int) -> [Float] {
        (0..<n).map { i in
            var h: Float = 0
            for j in 0..<k { let v = p[i * k + j]; if v > 0 { h -= v * logf(v) } }
            return h
        }
    }

    /// TENT: mean entropy of the predictions. dH_i/dz_ij = −p_ij (log p_ij + H_i).
    public static func entropy(_ logits: Tensor) -> (loss: Float, grad: Tensor) {
        let (n, k) = (logits.shape[0], logits.shape[1])
        let p = softmax(logits)
        let h = entropies(p, n: n, k: k)
        var g = [Float](repeating: 0, count: n * k)
        for i in 0..<n { for j in 0..<k {
            let v = max(p[i * k + j], 1e-30)
            g[i * k + j] = -v * (logf(v) + h[i]) / Float(n)
        } }
        return (h.reduce(0, +) / Float(n), Tensor(shape: logits.shape, data: g))
    }

    /// SHOT-IM: mean per-sample entropy minus the entropy of the batch-mean prediction (which rewards
    /// diverse predictions and so resists collapse onto one class).
    public static func informationMaximisation(_ logits: Tensor) -> (loss: Float, grad: Tensor) {
        let (n, k) = (logits.shape[0], logits.shape[1])
        let (ent, entGrad) = entropy(logits)
        let p = softmax(logits)
        var mean = [Float](repeating: 0, count: k)
        for i in 0..<n { for j in 0..<k { mean[j] += p[i * k + j] / Float(n) } }
        var hMean: Float = 0
        for j in 0..<k where mean[j] > 0 { hMean -= mean[j] * logf(mean[j]) }
        // d(−H(p̄))/dz_ij = (1/N) p_ij (log p̄_j − Σ_k p_ik log p̄_k)
        var g = entGrad.data
        let logMean = mean.map { logf(max($0, 1e-30)) }
        for i in 0..<n {
            var s: Float = 0
            for j in 0..<k { s += p[i * k + j] * logMean[j] }
            for j in 0..<k { g[i * k + j] += p[i * k + j] * (logMean[j] - s) / Float(n) }
        }
        return (ent - hMean, Tensor(shape: logits.shape, data: g))
    }

    /// EATA-style: only samples with entropy under `margin` count (unreliable ones are dropped), each weighted
    /// by 1/exp(H − margin) held constant, as EATA does. Returns the number of samples used.
    public static func filteredEntropy(_ logits: Tensor, margin: Float = 0.4 * logf(10)) -> (loss: Float, grad: Tensor, used: Int) {
        let (n, k) = (logits.shape[0], logits.shape[1])
        let p = softmax(logits)
        let h = entropies(p, n: n, k: k)
        let selected = (0..<n).filter { h[$0] < margin }
        var g = [Float](repeating: 0, count: n * k)
        guard !selected.isEmpty else { return (0, Tensor(shape: logits.shape, data: g), 0) }
        var loss: Float = 0
        for i in selected {
            let w = 1 / expf(h[i] - margin)
            loss += w * h[i]
            for j in 0..<k {
                let v = max(p[i * k + j], 1e-30)
                g[i * k + j] = -w * v * (logf(v) + h[i]) / Float(selected.count)
            }
        }
        return (loss / Float(selected.count), Tensor(shape: logits.shape, data: g), selected.count)
    }
}
