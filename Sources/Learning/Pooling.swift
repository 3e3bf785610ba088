/// Max or average pooling over a square window with stride and zero padding (floor mode). Padded positions
/// never win a max; an average divides by the whole window when `countIncludePad` (PyTorch's default), else
/// by the positions inside the image (ONNX's default).
public struct Pooling: Sendable, Equatable {
    public enum Kind: Sendable { case max, average }
    public let kind: Kind, kernel: Int, stride: Int, padding: Int, countIncludePad: Bool

    public init(_ kind: Kind, kernel: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true) {
        precondition(kernel >= 1 && (stride ?? kernel) >= 1 && padding >= 0 && padding < kernel)
        self.kind = kind
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
        self.countIncludePad = countIncludePad
    }

    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }

    // x (N, C, H, W) -> y (N, C, Ho, Wo), and for max the flat input index of each output
    func forward(_ x: Tensor) -> (Tensor, [Int]) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = outputSize(h, w)
        precondition(ho >= 1 && wo >= 1, "pool output of \(x.shape) would be empty")
        var y = [Float](repeating: 0, count: n * c * ho * wo)
        var argmax = [Int](repeating: 0, count: kind == .max ? y.count : 0)
        x.data.withUnsafeBufferPointer { xp in
            for plane in 0..<(n * c) {
                let ib = plane * h * w, ob = plane * ho * wo
                for oy in 0..<ho { for ox in 0..<wo {
                    var best = -Float.infinity, bi = -1, sum: Float = 0, inside = 0
                    for ky in 0..<kernel { for kx in 0..<kernel {
                        let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                        guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                        let idx = ib + iy * w + ix
                        let v = xp[idx]
                        sum += v
                        inside += 1
                        if v > best || bi < 0 { best = v; bi = idx }
                    } }
                    let o = ob + oy * wo + ox
                    if kind == .max { y[o] = best; argmax[o] = bi } else { y[o] = sum / Float(countIncludePad ? kernel * kernel : inside) }
                } }
            }
        }
        return (Tensor(shape: [n, c, ho, wo], data: y), argmax)
    }

    // dy (N, C, Ho, Wo) -> dx (N, C, H, W)
    func backward(_ dy: Tensor, argmax: [Int], inputShape: [Int]) -> Tensor {
        let (h, w) = (inputShape[2], inputShape[3])
        let (ho, wo) = (dy.shape[2], dy.shape[3])
        var dx = [Float](repeating: 0, count: inputShape.reduce(1, *))
        if kind == .max {
            for o in dy.data.indices { dx[argmax[o]] += dy.data[o] }
            return Tensor(shape: inputShape, data: dx)
        }
        for plane in 0..<(inputShape[0] * inputShape[1]) {
            let ib = plane * h * w, ob = plane * ho * wo
            for oy in 0..<ho { for ox in 0..<wo {
                let rows = max(0, oy * stride - padding)..<min(h, oy * stride - padding + kernel)
                let cols = max(0, ox * stride - padding)..<min(w, ox * stride - padding + kernel)
                let g = dy.data[ob + oy * wo + ox] / Float(countIncludePad ? kernel * kernel : rows.count * cols.count)
                for iy in rows { for ix in cols { dx[ib + iy * w + ix] += g } }
            } }
        }
        return Tensor(shape: inputShape, data: dx)
    }
}

/// Means over H and W, and nearest-neighbour resizing: the shape ops of the head and of the lite adapter.
enum Spatial {
    // x (N, C, H, W) -> means (N·C)
    static func planeMeans(_ x: Tensor) -> [Float] {
        let hw = x.shape[2] * x.shape[3]
        var y = [Float](repeating: 0, count: x.shape[0] * x.shape[1])
        x.data.withUnsafeBufferPointer { xp in
            for i in y.indices {
                var s: Float = 0
                for k in 0..<hw { s += xp[i * hw + k] }
                y[i] = s / Float(hw)
            }
        }
        return y
    }

    // d means (N·C) -> dx (N, C, H, W)
    static func planeMeansBackward(_ dy: [Float], inputShape: [Int]) -> Tensor {
        let hw = inputShape[2] * inputShape[3]
        var dx = [Float](repeating: 0, count: inputShape.reduce(1, *))
        for i in dy.indices { let g = dy[i] / Float(hw); for k in 0..<hw { dx[i * hw + k] = g } }
        return Tensor(shape: inputShape, data: dx)
    }

    // x (N, C, H, W) -> y (N, C, height, width), nearest neighbour
    static func upsample(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        var y = [Float](repeating: 0, count: planes * height * width)
        for p in 0..<planes { for oy in 0..<height { for ox in 0..<width {
            y[(p * height + oy) * width + ox] = x.data[(p * h + oy * h / height) * w + ox * w / width]
        } } }
        return Tensor(shape: [x.shape[0], x.shape[1], height, width], data: y)
    }

    static func upsampleBackward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
        let (planes, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        let (height, width) = (dy.shape[2], dy.shape[3])
        var dx = [Float](repeating: 0, count: inputShape.reduce(1, *))
        for p in 0..<planes { for oy in 0..<height { for ox in 0..<width {
            dx[(p * h + oy * h / height) * w + ox * w / width] += dy.data[(p * height + oy) * width + ox]
        } } }
        return Tensor(shape: inputShape, data: dx)
    }
}
