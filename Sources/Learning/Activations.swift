/// max(0, x), or min(max(0, x), 6) for ReLU6. Writes +0 for every non-positive input. The gradient passes
/// exactly where 0 < y < cap, so the saved output (which the next layer holds anyway, copy-on-write) stands in
/// for a mask.
public final class ReLU: Layer {
    public let cap: Float?
    var function: Activation { cap.map { .clip(min: 0, max: $0) } ?? .relu }

    public init(cap: Float? = nil) { self.cap = cap }
    public static func relu6() -> ReLU { ReLU(cap: 6) }

    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        let y = function.forward(x)
        tape?.push(self, .values(y.data))
        return y
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        guard case .values(let y) = tape.pop(self) else { preconditionFailure("relu: foreign tape record") }
        return function.backward(dy, saved: y)
    }
}

/// Max or average pooling with a square window (no padding).
public final class Pool2d: Layer {
    public typealias Kind = Pooling.Kind
    public let pooling: Pooling
    public var kind: Kind { pooling.kind }
    public var kernel: Int { pooling.kernel }
    public var stride: Int { pooling.stride }

    public init(_ kind: Kind, kernel: Int, stride: Int? = nil) { pooling = Pooling(kind, kernel: kernel, stride: stride) }

    // x (N, C, H, W) -> y (N, C, Ho, Wo), floor mode
    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        let (y, argmax) = pooling.forward(x)
        tape?.push(self, .argmax(argmax, shape: x.shape))
        return y
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        guard case .argmax(let argmax, let shape) = tape.pop(self) else { preconditionFailure("pool: foreign tape record") }
        return pooling.backward(dy, argmax: argmax, inputShape: shape)
    }
}

/// Mean over H and W: (N, C, H, W) -> (N, C).
public final class GlobalAvgPool: Layer {
    public init() {}

    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        tape?.push(self, .shape(x.shape))
        return Tensor(shape: [x.shape[0], x.shape[1]], data: Spatial.planeMeans(x))
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        guard case .shape(let shape) = tape.pop(self) else { preconditionFailure("pool: foreign tape record") }
        return Spatial.planeMeansBackward(dy.data, inputShape: shape)
    }
}

/// Nearest-neighbour resize to a fixed spatial size (for the lite residual adapter).
public final class Upsample: Layer {
    public let height: Int, width: Int
    public init(height: Int, width: Int) { self.height = height; self.width = width }

    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        tape?.push(self, .shape(x.shape))
        return Spatial.upsample(x, height: height, width: width)
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        guard case .shape(let shape) = tape.pop(self) else { preconditionFailure("upsample: foreign tape record") }
        return Spatial.upsampleBackward(dy, inputShape: shape)
    }
}

/// (N, ...) -> (N, features).
public final class Flatten: Layer {
    public init() {}

    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        tape?.push(self, .shape(x.shape))
        return Tensor(shape: [x.shape[0], x.perSample], data: x.data)
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        guard case .shape(let shape) = tape.pop(self) else { preconditionFailure("flatten: foreign tape record") }
        return Tensor(shape: shape, data: dy.data)
    }
}
