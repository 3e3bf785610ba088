/// One differentiable operation with its parameters. `forward` saves exactly what `backward` needs;
/// `backward` takes dL/dy, accumulates parameter gradients with += (only for trainable parameters), returns dL/dx.
public protocol Layer: AnyObject {
    func forward(_ x: Tensor, training: Bool) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
    /// Floats held for backward since the last forward (activation memory).
    var savedFloats: Int { get }
}

/// Layers applied in order.
public final class Sequential: Layer {
    public let layers: [Layer]
    public init(_ layers: [Layer]) { self.layers = layers }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        layers.reduce(x) { $1.forward($0, training: training) }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        layers.reversed().reduce(dy) { $1.backward($0) }
    }

    public var savedFloats: Int { layers.reduce(0) { $0 + $1.savedFloats } }
}
