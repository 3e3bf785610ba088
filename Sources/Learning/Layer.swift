/// One differentiable operation with its parameters, and no per-call state: `forward` saves exactly what
/// `backward` needs on the caller's tape (nothing without one, as in inference), and `backward` pops it, takes
/// dL/dy, accumulates parameter gradients with += (only for trainable parameters), and returns dL/dx.
public protocol Layer: AnyObject {
    func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor
    func backward(_ dy: Tensor, tape: Tape) -> Tensor
}

extension Layer {
    /// A forward that saves nothing: inference, or training-mode statistics without a backward.
    public func forward(_ x: Tensor, training: Bool) -> Tensor { forward(x, training: training, tape: nil) }
}

/// Layers applied in order.
public final class Sequential: Layer {
    public let layers: [Layer]
    public init(_ layers: [Layer]) { self.layers = layers }

    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        layers.reduce(x) { $1.forward($0, training: training, tape: tape) }
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        layers.reversed().reduce(dy) { $1.backward($0, tape: tape) }
    }
}
