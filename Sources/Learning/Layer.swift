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

    /// An inference pass (evaluation mode, nothing saved) folds each conv → batch norm (→ ReLU or clip) into one
    /// convolution pass, unless the batch norm is re-estimating its statistics (then it normalises with the batch's).
    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        guard !training, !(tape?.saving ?? false) else { return layers.reduce(x) { $1.forward($0, training: training, tape: tape) } }
        var h = x, i = 0
        while i < layers.count {
            if let conv = layers[i] as? Conv2d, i + 1 < layers.count, let bn = layers[i + 1] as? BatchNorm2d, bn.cumulativeBatches == nil {
                var activation: Activation?
                if i + 2 < layers.count, let relu = layers[i + 2] as? ReLU, Convolution.fuses(relu.function) { activation = relu.function }
                h = conv.forwardFolded(h, norm: bn, activation: activation, tape: tape)
                i += activation == nil ? 2 : 3
            } else {
                h = layers[i].forward(h, training: training, tape: tape)
                i += 1
            }
        }
        return h
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        layers.reversed().reduce(dy) { $1.backward($0, tape: tape) }
    }
}
