/// A single-entry single-exit block: main path, optional shortcut (identity or projection), optional final
/// activation, and a slot for a residual adapter beside it. Any block with the same input and output
/// shapes can take its place (pruned variants, or `skip`).
public final class Block: Layer {
    public enum Kind: String, Codable, Sendable { case basic, invertedResidual = "inverted-residual", skip, graph }

    public let name: String
    public let kind: Kind
    public let inChannels: Int, outChannels: Int, stride: Int
    public let inputSize: (Int, Int)
    public let main: Sequential?
    /// nil with `residual` = identity shortcut.
    public let shortcut: Sequential?
    public let residual: Bool
    public let finalReLU: ReLU?
    public internal(set) var adapter: Layer?
    public internal(set) var adapterKind: AdapterKind?
    /// The convolutions of the main path in order (for pruning and profiling).
    public let convs: [Conv2d]
    public let norms: [BatchNorm2d]

    init(name: String, kind: Kind, inChannels: Int, outChannels: Int, stride: Int, inputSize: (Int, Int), main: Sequential?,
         shortcut: Sequential?, residual: Bool, finalReLU: Bool, convs: [Conv2d], norms: [BatchNorm2d]) {
        self.name = name
        self.kind = kind
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        self.inputSize = inputSize
        self.main = main
        self.shortcut = shortcut
        self.residual = residual
        self.finalReLU = finalReLU ? ReLU() : nil
        self.convs = convs
        self.norms = norms
    }

    public var outputSize: (Int, Int) { ((inputSize.0 - 1) / stride + 1, (inputSize.1 - 1) / stride + 1) }

    /// ResNet basic block: conv3×3-BN-ReLU-conv3×3-BN, plus identity or 1×1-conv-BN shortcut, ReLU after the sum.
    /// `hidden` (default `out`) is the width between the two convolutions: the one a pruned variant narrows,
    /// since the block's output width must stay.
    public static func basic(_ store: ParameterStore, name: String, in c: Int, out o: Int, stride: Int, inputSize: (Int, Int),
                             hidden: Int? = nil, rng: inout SeededRandom) -> Block {
        let h = hidden ?? o
        let conv1 = Conv2d(store, name: name + ".conv1", in: c, out: h, kernel: 3, stride: stride, padding: 1, rng: &rng)
        let bn1 = BatchNorm2d(store, name: name + ".bn1", channels: h)
        let conv2 = Conv2d(store, name: name + ".conv2", in: h, out: o, kernel: 3, padding: 1, rng: &rng)
        let bn2 = BatchNorm2d(store, name: name + ".bn2", channels: o)
        var shortcut: Sequential?
        if stride != 1 || c != o {
            shortcut = Sequential([Conv2d(store, name: name + ".shortcut.0", in: c, out: o, kernel: 1, stride: stride, rng: &rng),
                                   BatchNorm2d(store, name: name + ".shortcut.1", channels: o)])
        }
        return Block(name: name, kind: .basic, inChannels: c, outChannels: o, stride: stride, inputSize: inputSize,
                     main: Sequential([conv1, bn1, ReLU(), conv2, bn2]), shortcut: shortcut, residual: true, finalReLU: true,
                     convs: [conv1, conv2], norms: [bn1, bn2])
    }

    /// MobileNetV2 inverted residual: 1×1 expand-BN-ReLU6, 3×3 depthwise-BN-ReLU6, 1×1 project-BN;
    /// identity residual when stride 1 and channels match. `hidden` (default `in × expansion`) is the expanded
    /// width, the one a pruned variant narrows.
    public static func invertedResidual(_ store: ParameterStore, name: String, in c: Int, out o: Int, stride: Int, expansion: Int,
                                        inputSize: (Int, Int), hidden: Int? = nil, rng: inout SeededRandom) -> Block {
        let hidden = hidden ?? c * expansion
        let expand = Conv2d(store, name: name + ".expand", in: c, out: hidden, kernel: 1, rng: &rng)
        let bn1 = BatchNorm2d(store, name: name + ".bn1", channels: hidden)
        let dw = Conv2d(store, name: name + ".depthwise", in: hidden, out: hidden, kernel: 3, stride: stride, padding: 1, groups: hidden, rng: &rng)
        let bn2 = BatchNorm2d(store, name: name + ".bn2", channels: hidden)
        let project = Conv2d(store, name: name + ".project", in: hidden, out: o, kernel: 1, rng: &rng)
        let bn3 = BatchNorm2d(store, name: name + ".bn3", channels: o)
        return Block(name: name, kind: .invertedResidual, inChannels: c, outChannels: o, stride: stride, inputSize: inputSize,
                     main: Sequential([expand, bn1, ReLU.relu6(), dw, bn2, ReLU.relu6(), project, bn3]), shortcut: nil,
                     residual: stride == 1 && c == o, finalReLU: false, convs: [expand, dw, project], norms: [bn1, bn2, bn3])
    }

    /// Identity (depth elasticity): only where input and output shapes agree.
    public static func skip(name: String, channels: Int, inputSize: (Int, Int)) -> Block {
        Block(name: name, kind: .skip, inChannels: channels, outChannels: channels, stride: 1, inputSize: inputSize,
              main: nil, shortcut: nil, residual: true, finalReLU: false, convs: [], norms: [])
    }

    /// Depth elasticity where the shapes change: only the block's 1×1-conv-BN projection shortcut, then ReLU,
    /// so the position keeps its output shape while the main path is dropped.
    public static func shortcutOnly(_ store: ParameterStore, name: String, in c: Int, out o: Int, stride: Int, inputSize: (Int, Int),
                                    rng: inout SeededRandom) -> Block {
        let shortcut = Sequential([Conv2d(store, name: name + ".shortcut.0", in: c, out: o, kernel: 1, stride: stride, rng: &rng),
                                   BatchNorm2d(store, name: name + ".shortcut.1", channels: o)])
        return Block(name: name, kind: .skip, inChannels: c, outChannels: o, stride: stride, inputSize: inputSize,
                     main: nil, shortcut: shortcut, residual: true, finalReLU: true, convs: [], norms: [])
    }

    /// A block of a graph-defined network (an imported one, or any variant of its blocks): the body is a graph
    /// whose residual joins, if any, are inside it; the adapter slot sits beside it as for every block
    /// (body(x) + adapter(x)). `stride` is the one that maps `inputSize` to the body's output size (adapters need it).
    public static func graph(name: String, body: GraphLayer, in c: Int, out o: Int, stride: Int, inputSize: (Int, Int)) -> Block {
        Block(name: name, kind: .graph, inChannels: c, outChannels: o, stride: stride, inputSize: inputSize, main: Sequential([body]),
              shortcut: nil, residual: false, finalReLU: false, convs: [], norms: body.norms)
    }

    /// Gives this block the adapter of its position. Every variant at one position shares one adapter object (and
    /// its parameters), so training the adapter once adapts every combination (EdgeScaler).
    public func shareAdapter(_ layer: Layer?, kind: AdapterKind?) {
        adapter = layer
        adapterKind = kind
    }

    /// Attaches a zero-initialised adapter to this block position.
    public func attachAdapter(_ kind: AdapterKind, store: ParameterStore, rng: inout SeededRandom) {
        adapter = AdapterFactory.make(kind, store, name: name + ".adapter", inChannels: inChannels, outChannels: outChannels,
                                      stride: stride, inputSize: inputSize, rng: &rng)
        adapterKind = kind
    }

    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        var y: Tensor
        if let main {
            y = main.forward(x, training: training, tape: tape)
            if residual {
                let s = shortcut?.forward(x, training: training, tape: tape) ?? x
                y.add(s)
            }
        } else {
            // A skip variant: the shortcut alone (or the input itself).
            y = shortcut?.forward(x, training: training, tape: tape) ?? x
        }
        if let adapter {
            let a = adapter.forward(x, training: training, tape: tape)
            y.add(a)
        }
        return finalReLU?.forward(y, training: training, tape: tape) ?? y
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor { backward(dy, tape: tape, inputGradient: true)! }

    /// As `backward`; without `inputGradient` (nothing before this block trains) only the parts that hold a
    /// trainable parameter are back-propagated (their records of the others are dropped) and nil comes back: a
    /// frozen main path beside a training adapter costs nothing.
    func backward(_ dy: Tensor, tape: Tape, inputGradient: Bool) -> Tensor? {
        let d = finalReLU?.backward(dy, tape: tape) ?? dy
        if !inputGradient {
            for part in [main, residual ? shortcut : nil, adapter].compactMap({ $0 }) {
                if !Self.trains(part) { tape.drop(part); continue }
                if let conv = part as? Conv2d { _ = conv.backward(d, tape: tape, inputGradient: false) } else { _ = part.backward(d, tape: tape) }
            }
            return nil
        }
        var dx = main?.backward(d, tape: tape) ?? Tensor(zeros: [d.shape[0], inChannels, inputSize.0, inputSize.1])
        if residual {
            let ds = shortcut?.backward(d, tape: tape) ?? d
            dx.add(ds)
        }
        if let adapter {
            let da = adapter.backward(d, tape: tape)
            dx.add(da)
        }
        return dx
    }

    /// Whether back-propagating `layer` can change a parameter (true for a layer whose parameters are not known here).
    static func trains(_ layer: Layer) -> Bool {
        switch layer {
        case let c as Conv2d: return c.store.isTrainable(c.weightID) || (c.biasID.map(c.store.isTrainable) ?? false)
        case let bn as BatchNorm2d: return bn.store.isTrainable(bn.gammaID) || bn.store.isTrainable(bn.betaID)
        case let s as Sequential: return s.layers.contains(where: trains)
        case is ReLU, is Pool2d, is Upsample, is GlobalAvgPool, is Flatten: return false
        default: return true
        }
    }
}
