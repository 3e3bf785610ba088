import Foundation

/// Elementwise activations as ONNX defines them. Each derivative reads the op's output, except HardSwish's,
/// which reads its input (`derivativeReadsInput`): that is what a tape saves.
public enum Activation: Sendable, Equatable {
    /// max(0, x) (writes +0 for every non-positive input).
    case relu
    /// min(max(x, lo), hi): ReLU6 is clip(0, 6).
    case clip(min: Float, max: Float)
    /// 1 / (1 + e^−x).
    case sigmoid
    /// max(0, min(1, α·x + β)); ONNX's defaults are α = 0.2, β = 0.5, PyTorch exports α = 1/6.
    case hardSigmoid(alpha: Float, beta: Float)
    /// x · max(0, min(1, x/6 + 1/2)).
    case hardSwish

    var derivativeReadsInput: Bool { self == .hardSwish }

    // x (any shape) -> y (same shape), written into a fresh buffer (no copy of x first)
    func forward(_ x: Tensor) -> Tensor {
        let n = x.count
        var y = Convolution.uninitialized(n)
        x.data.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
            guard let xp = xb.baseAddress, let yp = yb.baseAddress else { return }
            switch self {
            case .relu: for i in 0..<n { yp[i] = min(max(xp[i], 0), .infinity) }
            case .clip(let lo, let hi): for i in 0..<n { yp[i] = min(max(xp[i], lo), hi) }
            case .sigmoid: for i in 0..<n { yp[i] = 1 / (1 + expf(-xp[i])) }
            case .hardSigmoid(let a, let b): for i in 0..<n { yp[i] = max(0, min(1, a * xp[i] + b)) }
            case .hardSwish: for i in 0..<n { let v = xp[i]; yp[i] = v * max(0, min(1, v / 6 + 0.5)) }
            }
        } }
        return Tensor(shape: x.shape, data: y)
    }

    // dy -> dx, from the saved output y (or input x for HardSwish), written into a fresh buffer
    func backward(_ dy: Tensor, saved s: [Float]) -> Tensor {
        let n = dy.count
        precondition(s.count == n, "activation backward: \(s.count) saved values for \(n) gradients")
        var dx = Convolution.uninitialized(n)
        s.withUnsafeBufferPointer { sb in dy.data.withUnsafeBufferPointer { db in dx.withUnsafeMutableBufferPointer { ob in
            guard let sp = sb.baseAddress, let dp = db.baseAddress, let op = ob.baseAddress else { return }
            switch self {
            // Both loads unconditional, then a select: no branch per element, so the compiler vectorises these loops.
            case .relu: for i in 0..<n { let (v, d) = (sp[i], dp[i]); op[i] = v > 0 ? d : 0 }
            case .clip(let lo, let hi): for i in 0..<n { let (v, d) = (sp[i], dp[i]); op[i] = v > lo && v < hi ? d : 0 }
            case .sigmoid: for i in 0..<n { op[i] = dp[i] * (sp[i] * (1 - sp[i])) }
            case .hardSigmoid(let a, _): for i in 0..<n { op[i] = sp[i] > 0 && sp[i] < 1 ? dp[i] * a : 0 }
            case .hardSwish:
                for i in 0..<n {
                    let v = sp[i]
                    op[i] = dp[i] * (v <= -3 ? 0 : (v >= 3 ? 1 : v / 3 + 0.5))
                }
            }
        } } }
        return Tensor(shape: dy.shape, data: dx)
    }
}

/// Binary elementwise ops with the one broadcast the supported networks use: both operands of one shape, or
/// one of them (N, C, 1, 1) against the other's (N, C, H, W) (squeeze-and-excitation).
enum Broadcast {
    /// Per-channel broadcast factor: 1 for equal shapes, H·W when `small` is (N, C, 1, 1) beside `large`.
    static func planeSize(_ large: [Int], _ small: [Int]) -> Int {
        if large == small { return 1 }
        precondition(large.count == 4 && small == [large[0], large[1], 1, 1], "cannot broadcast \(small) against \(large)")
        return large[2] * large[3]
    }

    /// a + b or a · b, the larger shape out.
    static func forward(_ a: Tensor, _ b: Tensor, multiply: Bool) -> Tensor {
        let (large, small) = a.count >= b.count ? (a, b) : (b, a)
        let hw = planeSize(large.shape, small.shape)
        var y = large.data
        small.data.withUnsafeBufferPointer { sp in y.withUnsafeMutableBufferPointer { yp in
            if hw == 1 {
                if multiply { for i in 0..<yp.count { yp[i] = a.data[i] * b.data[i] } }
                else { for i in 0..<yp.count { yp[i] = a.data[i] + b.data[i] } }
                return
            }
            for plane in 0..<sp.count {
                let v = sp[plane], row = yp.baseAddress! + plane * hw
                if multiply { for k in 0..<hw { row[k] *= v } } else { for k in 0..<hw { row[k] += v } }
            }
        } }
        return Tensor(shape: large.shape, data: y)
    }

    /// (dL/da, dL/db): a broadcast operand's gradient is summed over its plane.
    static func backward(_ dy: Tensor, _ a: Tensor, _ b: Tensor, multiply: Bool) -> (Tensor, Tensor) {
        func grad(of operand: Tensor, other: Tensor) -> Tensor {
            let hw = operand.count >= other.count ? 1 : planeSize(other.shape, operand.shape)
            var d = [Float](repeating: 0, count: operand.count)
            if hw == 1 {
                // Full-size operand: dy (times the other operand, broadcast when it is the small one).
                let ohw = other.count == operand.count ? 1 : planeSize(operand.shape, other.shape)
                for i in d.indices { d[i] = multiply ? dy.data[i] * other.data[ohw == 1 ? i : i / ohw] : dy.data[i] }
            } else {
                for plane in d.indices {
                    var s: Float = 0
                    for k in 0..<hw { let i = plane * hw + k; s += multiply ? dy.data[i] * other.data[i] : dy.data[i] }
                    d[plane] = s
                }
            }
            return Tensor(shape: operand.shape, data: d)
        }
        return (grad(of: a, other: b), grad(of: b, other: a))
    }
}
