/// max(0, x), or min(max(0, x), 6) for ReLU6. Writes +0 for every non-positive input.
public final class ReLU: Layer {
    public let cap: Float?
    /// The output of the last forward: the gradient passes exactly where 0 < y < cap, so the output (which the
    /// next layer holds anyway, copy-on-write) stands in for a mask.
    var output: [Float] = []

    public init(cap: Float? = nil) { self.cap = cap }
    public static func relu6() -> ReLU { ReLU(cap: 6) }

    public var savedFloats: Int { output.count }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = x.data
        let hi = cap ?? .infinity
        y.withUnsafeMutableBufferPointer { yp in
            for i in 0..<yp.count { yp[i] = min(max(yp[i], 0), hi) }
        }
        output = y
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var dx = dy.data
        let hi = cap ?? .infinity
        output.withUnsafeBufferPointer { yp in dx.withUnsafeMutableBufferPointer { dp in
            for i in 0..<dp.count where !(yp[i] > 0 && yp[i] < hi) { dp[i] = 0 }
        } }
        return Tensor(shape: dy.shape, data: dx)
    }
}

/// Max or average pooling with a square window.
public final class Pool2d: Layer {
    public enum Kind: Sendable { case max, average }
    public let kind: Kind, kernel: Int, stride: Int
    var argmax: [Int] = []
    var inputShape: [Int] = []

    public init(_ kind: Kind, kernel: Int, stride: Int? = nil) {
        self.kind = kind
        self.kernel = kernel
        self.stride = stride ?? kernel
    }

    public var savedFloats: Int { argmax.count }

    // x (N, C, H, W) -> y (N, C, Ho, Wo), floor mode
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ho = (h - kernel) / stride + 1, wo = (w - kernel) / stride + 1
        inputShape = x.shape
        var y = [Float](repeating: 0, count: n * c * ho * wo)
        var argmax = [Int](repeating: 0, count: kind == .max ? y.count : 0)
        defer { self.argmax = argmax }
        for plane in 0..<(n * c) {
            let ib = plane * h * w, ob = plane * ho * wo
            for oy in 0..<ho { for ox in 0..<wo {
                var best = -Float.infinity, bi = 0, sum: Float = 0
                for ky in 0..<kernel { for kx in 0..<kernel {
                    let idx = ib + (oy * stride + ky) * w + ox * stride + kx
                    let v = x.data[idx]
                    sum += v
                    if v > best { best = v; bi = idx }
                } }
                let o = ob + oy * wo + ox
                if kind == .max { y[o] = best; argmax[o] = bi } else { y[o] = sum / Float(kernel * kernel) }
            } }
        }
        return Tensor(shape: [n, c, ho, wo], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (h, w) = (inputShape[2], inputShape[3])
        let (ho, wo) = (dy.shape[2], dy.shape[3])
        var dx = [Float](repeating: 0, count: inputShape.reduce(1, *))
        if kind == .max {
            let argmax = self.argmax
            for o in dy.data.indices { dx[argmax[o]] += dy.data[o] }
        } else {
            let scale = 1 / Float(kernel * kernel)
            for plane in 0..<(inputShape[0] * inputShape[1]) {
                let ib = plane * h * w, ob = plane * ho * wo
                for oy in 0..<ho { for ox in 0..<wo {
                    let g = dy.data[ob + oy * wo + ox] * scale
                    for ky in 0..<kernel { for kx in 0..<kernel { dx[ib + (oy * stride + ky) * w + ox * stride + kx] += g } }
                } }
            }
        }
        return Tensor(shape: inputShape, data: dx)
    }
}

/// Mean over H and W: (N, C, H, W) -> (N, C).
public final class GlobalAvgPool: Layer {
    var inputShape: [Int] = []
    public init() {}
    public var savedFloats: Int { 0 }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        let hw = x.shape[2] * x.shape[3]
        var y = [Float](repeating: 0, count: x.shape[0] * x.shape[1])
        for i in y.indices {
            var s: Float = 0
            for k in 0..<hw { s += x.data[i * hw + k] }
            y[i] = s / Float(hw)
        }
        return Tensor(shape: [x.shape[0], x.shape[1]], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let hw = inputShape[2] * inputShape[3]
        var dx = [Float](repeating: 0, count: inputShape.reduce(1, *))
        for i in dy.data.indices { let g = dy.data[i] / Float(hw); for k in 0..<hw { dx[i * hw + k] = g } }
        return Tensor(shape: inputShape, data: dx)
    }
}

/// Nearest-neighbour resize to a fixed spatial size (for the lite residual adapter).
public final class Upsample: Layer {
    public let height: Int, width: Int
    var inputShape: [Int] = []
    public init(height: Int, width: Int) { self.height = height; self.width = width }
    public var savedFloats: Int { 0 }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        var y = [Float](repeating: 0, count: planes * height * width)
        for p in 0..<planes { for oy in 0..<height { for ox in 0..<width {
            y[(p * height + oy) * width + ox] = x.data[(p * h + oy * h / height) * w + ox * w / width]
        } } }
        return Tensor(shape: [x.shape[0], x.shape[1], height, width], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (planes, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        var dx = [Float](repeating: 0, count: inputShape.reduce(1, *))
        for p in 0..<planes { for oy in 0..<height { for ox in 0..<width {
            dx[(p * h + oy * h / height) * w + ox * w / width] += dy.data[(p * height + oy) * width + ox]
        } } }
        return Tensor(shape: inputShape, data: dx)
    }
}

/// (N, ...) -> (N, features).
public final class Flatten: Layer {
    var inputShape: [Int] = []
    public init() {}
    public var savedFloats: Int { 0 }
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        return Tensor(shape: [x.shape[0], x.perSample], data: x.data)
    }
    public func backward(_ dy: Tensor) -> Tensor { Tensor(shape: inputShape, data: dy.data) }
}
