/// A network as stem → named blocks → head (global average pool, a graph network's hidden classifier layers if
/// any, linear). Parameters live in `store`
/// under PyTorch-style names (`stem.0.weight`, `blocks.2.conv1.weight`, `blocks.2.bn1.running_mean`, `head.weight`).
public final class Model {
    public let store: ParameterStore
    public let stem: Sequential
    public var blocks: [Block]
    public let pool = GlobalAvgPool()
    /// The classifier's layers between the pool and `head` (an imported network's Linear → Hardswish → Dropout,
    /// say), trained and lowered with the head; nil for the usual pool and one linear layer.
    public let headHidden: GraphLayer?
    public let head: Linear
    public let inputShape: [Int]   // (C, H, W)
    public let stemNorm: BatchNorm2d
    /// Every batch norm of the stem (the built-in families have one, `stemNorm`; a graph stem may have several).
    public let stemNorms: [BatchNorm2d]
    /// (C, H, W) of the stem's output.
    public let stemOutputShape: [Int]
    /// Threads of the passes this model runs on tapes of its own (inference); a training pass takes its tape's.
    public var threads = 1

    init(store: ParameterStore, stem: Sequential, stemNorm: BatchNorm2d, blocks: [Block], head: Linear, inputShape: [Int],
         stemNorms: [BatchNorm2d]? = nil, stemOutputShape: [Int]? = nil, headHidden: GraphLayer? = nil) {
        _ = BLAS.configured
        self.store = store
        self.stem = stem
        self.stemNorm = stemNorm
        self.stemNorms = stemNorms ?? [stemNorm]
        self.stemOutputShape = stemOutputShape ?? [stemNorm.channels, inputShape[1], inputShape[2]]
        self.blocks = blocks
        self.head = head
        self.headHidden = headHidden
        self.inputShape = inputShape
        // Nobody needs dL/d(data): the first convolution computes only its weight gradient.
        (stem.layers.first as? Conv2d)?.computesInputGradient = false
    }

    /// A graph-defined network (an imported one): the stem a graph, blocks of kind `graph`, the head the global
    /// average pool, the hidden classifier layers (a graph from the pooled features, if any) and `head` (a linear
    /// layer named `head`). The stem needs a batch norm (its first is `stemNorm`).
    public static func graphNetwork(store: ParameterStore, stem: GraphLayer, stemOutputShape: [Int], blocks: [Block], head: Linear,
                                    inputShape: [Int], headHidden: GraphLayer? = nil) throws -> Model {
        guard let first = stem.norms.first else { throw LearningError("the stem has no batch norm") }
        guard headHidden?.norms.isEmpty ?? true else { throw LearningError("the classifier's hidden layers hold a batch norm") }
        return Model(store: store, stem: Sequential([stem]), stemNorm: first, blocks: blocks, head: head, inputShape: inputShape,
                     stemNorms: stem.norms, stemOutputShape: stemOutputShape, headHidden: headHidden)
    }

    /// The reference network of the design notes, for 1×28×28 inputs and 10 classes:
    /// stem conv3×3 1→w0 (pad 1, no bias)-BN-ReLU; basic blocks b1 w0→w0 s1, b2 w0→w1 s2, b3 w1→w1 s1,
    /// b4 w1→w2 s2, b5 w2→w2 s1 (3×3 convs, pad 1, no bias, 1×1-conv-BN projection where shapes change);
    /// head: global average pool, linear w2→10. Default widths 16/32/64.
    public static func resnet(widths: [Int] = [16, 32, 64], blocksPerStage: [Int] = [1, 2, 2], inputShape: [Int] = [1, 28, 28],
                              classes: Int = 10, seed: UInt64 = 0) -> Model {
        precondition(widths.count == blocksPerStage.count)
        var rng = SeededRandom(seed: seed)
        let store = ParameterStore()
        let conv = Conv2d(store, name: "stem.0", in: inputShape[0], out: widths[0], kernel: 3, padding: 1, rng: &rng)
        let bn = BatchNorm2d(store, name: "stem.1", channels: widths[0])
        var size = (inputShape[1], inputShape[2])
        var blocks: [Block] = []
        var c = widths[0]
        for (stage, (w, count)) in zip(widths, blocksPerStage).enumerated() {
            for j in 0..<count {
                let stride = stage > 0 && j == 0 ? 2 : 1
                let b = Block.basic(store, name: "blocks.\(blocks.count)", in: c, out: w, stride: stride, inputSize: size, rng: &rng)
                size = b.outputSize
                blocks.append(b)
                c = w
            }
        }
        let head = Linear(store, name: "head", in: c, out: classes, rng: &rng)
        return Model(store: store, stem: Sequential([conv, bn, ReLU()]), stemNorm: bn, blocks: blocks, head: head, inputShape: inputShape)
    }

    /// A MobileNetV2-style network: stem conv3×3 (stride 1 on 28×28), then inverted-residual blocks
    /// (expansion `expansion`), per stage (channels, blocks, first stride).
    public static func mobileNetV2(stem stemWidth: Int = 16, stages: [(channels: Int, blocks: Int, stride: Int)] = [(16, 1, 1), (24, 2, 2), (32, 2, 2)],
                                   expansion: Int = 4, inputShape: [Int] = [1, 28, 28], classes: Int = 10, seed: UInt64 = 0) -> Model {
        var rng = SeededRandom(seed: seed)
        let store = ParameterStore()
        let conv = Conv2d(store, name: "stem.0", in: inputShape[0], out: stemWidth, kernel: 3, padding: 1, rng: &rng)
        let bn = BatchNorm2d(store, name: "stem.1", channels: stemWidth)
        var size = (inputShape[1], inputShape[2])
        var blocks: [Block] = []
        var c = stemWidth
        for stage in stages {
            for j in 0..<stage.blocks {
                let b = Block.invertedResidual(store, name: "blocks.\(blocks.count)", in: c, out: stage.channels,
                                               stride: j == 0 ? stage.stride : 1, expansion: expansion, inputSize: size, rng: &rng)
                size = b.outputSize
                blocks.append(b)
                c = stage.channels
            }
        }
        let head = Linear(store, name: "head", in: c, out: classes, rng: &rng)
        return Model(store: store, stem: Sequential([conv, bn, ReLU.relu6()]), stemNorm: bn, blocks: blocks, head: head, inputShape: inputShape)
    }

    /// Attaches a zero-initialised adapter of `kind` to every block position.
    public func attachAdapters(_ kind: AdapterKind, seed: UInt64 = 1) {
        var rng = SeededRandom(seed: seed)
        for b in blocks { b.attachAdapter(kind, store: store, rng: &rng) }
    }

    /// x (N, C, H, W) → logits (N, classes). A training pass that will be back-propagated saves on `tape`.
    /// Without a tape, one inference context (scratch only) serves the whole pass.
    public func forward(_ x: Tensor, training: Bool, tape: Tape? = nil) -> Tensor {
        let tape = tape ?? Tape(saving: false, threads: threads)
        return forwardSuffix(forwardPrefix(x, through: -1, training: training, tape: tape), after: -1, training: training, tape: tape)
    }

    /// x → the features after block `last` (after the stem for −1): what a device computes before it hands the
    /// rest of the network to an edge server.
    public func forwardPrefix(_ x: Tensor, through last: Int, training: Bool = false, tape: Tape? = nil) -> Tensor {
        precondition((-1..<blocks.count).contains(last))
        let tape = tape ?? Tape(saving: false, threads: threads)
        var h = stem.forward(x, training: training, tape: tape)
        for b in blocks.prefix(last + 1) { h = b.forward(h, training: training, tape: tape) }
        return h
    }

    /// The features after block `last` → logits: the edge server's half of a split network.
    public func forwardSuffix(_ h: Tensor, after last: Int, training: Bool = false, tape: Tape? = nil) -> Tensor {
        precondition((-1..<blocks.count).contains(last))
        let tape = tape ?? Tape(saving: false, threads: threads)
        var h = h
        for b in blocks.dropFirst(last + 1) { h = b.forward(h, training: training, tape: tape) }
        return classify(pool.forward(h, training: training, tape: tape), training: training, tape: tape)
    }

    /// Pooled features (N, C) → logits: the hidden classifier layers, then `head`.
    public func classify(_ pooled: Tensor, training: Bool = false, tape: Tape? = nil) -> Tensor {
        let tape = tape ?? Tape(saving: false, threads: threads)
        let z = headHidden.map { $0.forward(pooled, training: training, tape: tape) } ?? pooled
        return head.forward(z, training: training, tape: tape)
    }

    /// Shape (C, H, W) of the features after block `last` (after the stem for −1), i.e. of a split's cut tensor.
    public func featureShape(after last: Int) -> [Int] {
        precondition((-1..<blocks.count).contains(last))
        if last < 0 { return stemOutputShape }
        let b = blocks[last]
        return [b.outChannels, b.outputSize.0, b.outputSize.1]
    }

    /// Back-propagates dL/dlogits through the pass saved on `tape`. Stops as soon as nothing earlier trains, so a
    /// frozen prefix costs nothing.
    public func backward(_ dlogits: Tensor, tape: Tape) {
        var d = head.backward(dlogits, tape: tape)
        if let headHidden { d = headHidden.backward(d, tape: tape) }
        d = pool.backward(d, tape: tape)
        let firstTrainable = firstTrainableStage()
        for i in blocks.indices.reversed() {
            guard i >= firstTrainable else { return }
            // The first trainable block's input gradient reaches nothing that trains.
            guard let dx = blocks[i].backward(d, tape: tape, inputGradient: i > firstTrainable) else { return }
            d = dx
        }
        if firstTrainable < 0 { _ = stem.backward(d, tape: tape) }
    }

    /// −1 when the stem trains, else the index of the first block with a trainable parameter (blocks.count if none).
    func firstTrainableStage() -> Int {
        func trains(_ prefix: String) -> Bool {
            store.entries.indices.contains { !store.entries[$0].isBuffer && store.trainable[$0] && store.entries[$0].name.hasPrefix(prefix) }
        }
        if trains("stem.") { return -1 }
        return blocks.indices.first { trains("blocks.\($0).") } ?? blocks.count
    }

    /// Which parameters train during adaptation.
    public enum Trainable: Sendable {
        case all
        case adapters
        /// Adapters train while batch norms normalise with each batch's statistics (their affine weights frozen), so
        /// adapters learn under target statistics that a device later re-estimates (`bn-stats`) for its combination.
        case adaptersOnBatchStatistics
        case adaptersAndNorms
        case adaptersNormsAndHead
        case norms
    }

    /// Selects trainable parameters; with frozen normalisation layers, batch norms use running statistics.
    public func setTrainable(_ t: Trainable) {
        store.setTrainable { name in
            let isAdapter = name.contains(".adapter.")
            let isNorm = !isAdapter && (name.contains(".bn") || name.hasPrefix("stem.1") || name.contains(".shortcut.1")) && !name.contains("running")
            switch t {
            case .all: return true
            case .adapters, .adaptersOnBatchStatistics: return isAdapter
            case .adaptersAndNorms: return isAdapter || isNorm
            case .adaptersNormsAndHead: return isAdapter || isNorm || name.hasPrefix("head.")
            case .norms: return isNorm
            }
        }
        let frozenNorms = t == .adapters
        for bn in allNorms { bn.frozenStatistics = frozenNorms }
    }

    public var allNorms: [BatchNorm2d] {
        var out = stemNorms
        for b in blocks {
            out += b.norms
            if let s = b.shortcut { out += s.layers.compactMap { $0 as? BatchNorm2d } }
        }
        return out
    }

    /// Every parameter and buffer by its PyTorch-style name, as F32 safetensors tensors.
    public func namedTensors() -> [String: SafeTensor] {
        var out: [String: SafeTensor] = [:]
        for e in store.entries {
            let slab = e.isBuffer ? store.buffers : store.values
            out[e.name] = SafeTensor(floats: Array(slab[e.offset..<(e.offset + e.count)]), shape: e.shape)
        }
        return out
    }

    /// Loads parameters and buffers by name; every tensor of the model must be present with its shape and dtype.
    public func load(_ tensors: [String: SafeTensor]) throws {
        for e in store.entries {
            guard let t = tensors[e.name] else { throw LearningError("weights lack \(e.name)") }
            guard t.dtype == .F32, t.shape == e.shape else {
                throw LearningError("\(e.name): expected F32 \(e.shape), found \(t.dtype.rawValue) \(t.shape)")
            }
            try store.set(e.name, try t.floats())
        }
    }

    /// Floats of activation memory a training pass saved on `tape`, plus gradient floats that train.
    public func trainingMemoryFloats(_ tape: Tape) -> (activations: Int, gradients: Int) {
        (tape.savedFloats, store.trainableCount)
    }
}
