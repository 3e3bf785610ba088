/// A network as any DAG of the engine's ops over numbered values: values 0..<inputCount are the graph's inputs,
/// value inputCount + k is node k's output, and a node reads only values before it (so the node list is a
/// topological order by construction). Parameters are entry ids of a `ParameterStore`, so the optimiser,
/// `setTrainable`, safetensors and adapters see a graph's parameters as any layer's. A graph is a value
/// (Sendable); per-call state goes on the caller's tape, running statistics into the store.
public struct Graph: Sendable {
    public enum Op: Sendable, Equatable {
        /// (N, C, H, W) -> (N, Co, Ho, Wo); weight and optional bias entries.
        case conv(Convolution, weight: Int, bias: Int?)
        /// Per-channel batch norm: γ, β, running mean and variance entries. Training passes normalise with the
        /// batch's statistics and fold them into the running ones with `momentum`.
        case batchNorm(gamma: Int, beta: Int, mean: Int, variance: Int, eps: Float, momentum: Float)
        case activation(Activation)
        /// Two operands of one shape, or one (N, C, 1, 1) against (N, C, H, W).
        case add, mul
        case pool(Pooling)
        /// (N, C, H, W) -> (N, C, 1, 1).
        case globalAveragePool
        /// (N, ...) -> (N, features) (ONNX Flatten, axis 1).
        case flatten
        /// (N, in) -> (N, out) = x·Wᵀ + b (ONNX Gemm, transB = 1).
        case gemm(Dense, weight: Int, bias: Int?)
        /// Nearest-neighbour resize of H, W.
        case upsample(height: Int, width: Int)
        case identity
        /// Mean over H and W (ONNX ReduceMean, axes [2, 3]): (N, C, H, W) -> (N, C, 1, 1) with `keepDims`, else (N, C).
        case reduceMean(keepDims: Bool)
        /// A static reshape of each sample, the batch axis kept first: (N, ...) -> (N, perSample...), element order
        /// unchanged (ONNX Reshape with a constant shape).
        case reshape(perSample: [Int])
        /// Inference-mode dropout (ONNX Dropout without a training mode): the identity in every pass, training ones
        /// included, since an imported network's function is its inference function.
        case dropout

        var arity: Int { self == .add || self == .mul ? 2 : 1 }
    }

    public struct Node: Sendable {
        public let op: Op
        public let inputs: [Int]
        public let name: String
    }

    public let inputCount: Int
    public private(set) var nodes: [Node] = []
    /// Values the graph returns, in order.
    public var outputs: [Int] = []

    public init(inputs: Int = 1) {
        precondition(inputs >= 1)
        inputCount = inputs
    }

    public var valueCount: Int { inputCount + nodes.count }

    /// Appends a node reading `inputs` (earlier values) and returns the id of its output value.
    @discardableResult
    public mutating func add(_ op: Op, _ inputs: [Int], name: String = "") -> Int {
        precondition(inputs.count == op.arity, "\(op) takes \(op.arity) inputs, got \(inputs.count)")
        precondition(inputs.allSatisfy { (0..<valueCount).contains($0) }, "node \(name) reads a value not yet defined")
        nodes.append(Node(op: op, inputs: inputs, name: name))
        return valueCount - 1
    }

    /// Every value of one pass (kept for backward), and what ops saved beyond their inputs and outputs.
    public struct Frame: Sendable {
        var values: [Tensor?]
        var saved: [Tape.Saved?]
        var floats: Int {
            values.reduce(0) { $0 + ($1?.count ?? 0) } + saved.reduce(0) { $0 + ($1?.floats ?? 0) }
        }
    }

    /// Parameter values, buffers and entry offsets: a store's at call time, or an `InferenceGraph`'s own copy.
    struct Weights: Sendable {
        let values: [Float], buffers: [Float], offsets: [Int]

        init(_ store: ParameterStore) {
            values = store.values
            buffers = store.buffers
            offsets = store.entries.map(\.offset)
        }
    }

    /// How one batch-norm node normalises in a pass when its owner says otherwise than the pass's `training` flag
    /// (frozen statistics during adapter training, or a cumulative bn-stats re-estimation): which statistics
    /// normalise, and the running-average factor of the update (nil: no update).
    struct NormMode: Sendable { let batchStatistics: Bool, update: Float? }

    /// Runs the graph on `inputs` and returns its outputs. A training pass normalises with batch statistics and
    /// updates the store's running ones; with a tape, it saves what `backward` needs there.
    public func forward(_ inputs: [Tensor], store: ParameterStore, training: Bool, tape: Tape?) -> [Tensor] {
        forward(inputs, store: store, training: training, tape: tape, modes: [:])
    }

    /// As `forward`, batch-norm nodes (by node index) in `modes` normalised and updated as their mode says.
    func forward(_ inputs: [Tensor], store: ParameterStore, training: Bool, tape: Tape?, modes: [Int: NormMode]) -> [Tensor] {
        _ = BLAS.configured
        let (outputs, frame, updates) = run(inputs, Weights(store), training: training, save: tape?.saving ?? false,
                                            workspace: tape?.workspace ?? Workspace(), modes: modes)
        for u in updates {
            let (rm, rv) = (store.entries[u.mean].offset, store.entries[u.variance].offset)
            for ch in u.batchMean.indices {
                store.buffers[rm + ch] = (1 - u.momentum) * store.buffers[rm + ch] + u.momentum * u.batchMean[ch]
                store.buffers[rv + ch] = (1 - u.momentum) * store.buffers[rv + ch] + u.momentum * u.batchVariance[ch]
            }
        }
        if let tape, let frame { tape.frames.append(frame) }
        return outputs
    }

    /// Back-propagates dL/d(outputs) through the last pass on `tape` (popping it): accumulates the gradients of
    /// trainable parameters into the store and returns dL/d(inputs).
    public func backward(_ dOutputs: [Tensor], store: ParameterStore, tape: Tape) -> [Tensor] {
        guard let frame = tape.frames.popLast() else { preconditionFailure("graph backward without a forward on this tape") }
        return backward(dOutputs, frame: frame, store: store, workspace: tape.workspace)
    }

    struct RunningUpdate { let mean: Int, variance: Int, momentum: Float, batchMean: [Float], batchVariance: [Float] }

    func run(_ inputs: [Tensor], _ weights: Weights, training: Bool, save: Bool, workspace: Workspace, modes: [Int: NormMode] = [:])
        -> (outputs: [Tensor], frame: Frame?, updates: [RunningUpdate]) {
        precondition(inputs.count == inputCount, "the graph takes \(inputCount) inputs, got \(inputs.count)")
        precondition(!outputs.isEmpty, "the graph has no outputs")
        var values = [Tensor?](repeating: nil, count: valueCount)
        for (i, x) in inputs.enumerated() { values[i] = x }
        var saved = [Tape.Saved?](repeating: nil, count: save ? nodes.count : 0)
        var updates: [RunningUpdate] = []
        // Inference frees each value after its last reader (outputs are read at the end).
        var lastUse = [Int](repeating: -1, count: save ? 0 : valueCount)
        if !save {
            for (k, node) in nodes.enumerated() { for v in node.inputs { lastUse[v] = k } }
            for v in outputs { lastUse[v] = nodes.count }
        }
        weights.values.withUnsafeBufferPointer { vp in weights.buffers.withUnsafeBufferPointer { bp in
            let v = vp.baseAddress!, b = bp.baseAddress!
            func param(_ id: Int) -> UnsafePointer<Float> { v + weights.offsets[id] }
            var k = 0
            while k < nodes.count {
                defer { k += 1 }
                let node = nodes[k]
                let x = values[node.inputs[0]]!
                if !save, !training, let folded = foldedForward(at: k, x, modes: modes, lastUse: lastUse, param: param,
                                                                buffer: { b + weights.offsets[$0] }, workspace: workspace) {
                    // conv → batch norm (→ ReLU/clip) as one pass; the values in between are never made.
                    values[inputCount + folded.last] = folded.y
                    for i in node.inputs where lastUse[i] == k { values[i] = nil }
                    k = folded.last
                    continue
                }
                var record: Tape.Saved?
                let y: Tensor
                switch node.op {
                case .conv(let conv, let w, let bias):
                    y = conv.forward(x, weight: param(w), bias: bias.map(param), workspace: workspace)
                case .batchNorm(let gamma, let beta, let mean, let variance, let eps, let momentum):
                    let mode = modes[k] ?? NormMode(batchStatistics: training, update: training ? momentum : nil)
                    let out = Normalization.forward(x, gamma: param(gamma), beta: param(beta), mean: b + weights.offsets[mean],
                                                    variance: b + weights.offsets[variance], eps: eps, batchStatistics: mode.batchStatistics,
                                                    training: training)
                    if mode.batchStatistics, let factor = mode.update {
                        updates.append(RunningUpdate(mean: mean, variance: variance, momentum: factor, batchMean: out.batchMean,
                                                     batchVariance: out.batchVariance))
                    }
                    record = .normalised(xhat: out.xhat, invstd: out.invstd, shape: x.shape, batchStatistics: mode.batchStatistics)
                    y = out.y
                case .activation(let f): y = f.forward(x)
                case .add: y = Broadcast.forward(x, values[node.inputs[1]]!, multiply: false)
                case .mul: y = Broadcast.forward(x, values[node.inputs[1]]!, multiply: true)
                case .pool(let pooling):
                    let (out, argmax) = pooling.forward(x)
                    if pooling.kind == .max { record = .argmax(argmax, shape: x.shape) }
                    y = out
                case .globalAveragePool: y = Tensor(shape: [x.shape[0], x.shape[1], 1, 1], data: Spatial.planeMeans(x))
                case .flatten: y = Tensor(shape: [x.shape[0], x.perSample], data: x.data)
                case .gemm(let dense, let w, let bias):
                    y = dense.forward(Tensor(shape: [x.shape[0], x.perSample], data: x.data), weight: param(w), bias: bias.map(param))
                case .upsample(let h, let w): y = Spatial.upsample(x, height: h, width: w)
                case .identity, .dropout: y = x
                case .reduceMean(let keep):
                    precondition(x.shape.count == 4, "reduce mean expects (N, C, H, W), got \(x.shape)")
                    y = Tensor(shape: keep ? [x.shape[0], x.shape[1], 1, 1] : [x.shape[0], x.shape[1]], data: Spatial.planeMeans(x))
                case .reshape(let perSample):
                    precondition(perSample.reduce(1, *) == x.perSample, "reshape of \(x.shape) to (N, \(perSample)) changes the size")
                    y = Tensor(shape: [x.shape[0]] + perSample, data: x.data)
                }
                values[inputCount + k] = y
                if save { saved[k] = record } else { for i in node.inputs where lastUse[i] == k { values[i] = nil } }
            }
        } }
        return (outputs.map { values[$0]! }, save ? Frame(values: values, saved: saved) : nil, updates)
    }

    /// An inference pass's conv node `k` folded with the evaluation-mode batch norm that alone reads it (and a
    /// ReLU or clip that alone reads that), as `Sequential` does for layers: the output and the last node it stands
    /// for, or nil when node `k` does not start such a run.
    func foldedForward(at k: Int, _ x: Tensor, modes: [Int: NormMode], lastUse: [Int], param: (Int) -> UnsafePointer<Float>,
                       buffer: (Int) -> UnsafePointer<Float>, workspace: Workspace) -> (y: Tensor, last: Int)? {
        guard case .conv(let conv, let w, let bias) = nodes[k].op, k + 1 < nodes.count,
              case .batchNorm(let gamma, let beta, let mean, let variance, let eps, _) = nodes[k + 1].op,
              nodes[k + 1].inputs[0] == inputCount + k, lastUse[inputCount + k] == k + 1,
              !(modes[k + 1]?.batchStatistics ?? false) else { return nil }
        var activation: Activation?, last = k + 1
        if k + 2 < nodes.count, case .activation(let f) = nodes[k + 2].op, Convolution.fuses(f),
           nodes[k + 2].inputs[0] == inputCount + k + 1, lastUse[inputCount + k + 1] == k + 2 {
            activation = f
            last = k + 2
        }
        let (fw, fb) = conv.folded(weight: param(w), bias: bias.map(param), gamma: param(gamma), beta: param(beta),
                                   mean: buffer(mean), variance: buffer(variance), eps: eps)
        let y = fw.withUnsafeBufferPointer { wp in fb.withUnsafeBufferPointer { bp in
            conv.forward(x, weight: wp.baseAddress!, bias: bp.baseAddress!, activation: activation, workspace: workspace)
        } }
        return (y, last)
    }

    func backward(_ dOutputs: [Tensor], frame: Frame, store: ParameterStore, workspace: Workspace) -> [Tensor] {
        precondition(dOutputs.count == outputs.count, "one gradient per output")
        var values = frame.values
        var grads = [Tensor?](repeating: nil, count: valueCount)
        func accumulate(_ v: Int, _ d: Tensor) {
            if grads[v] == nil { grads[v] = d } else { grads[v]!.add(d) }
        }
        for (o, d) in zip(outputs, dOutputs) { accumulate(o, d) }
        let offsets = store.entries.map(\.offset)
        let trainable = store.entries.indices.map { !store.entries[$0].isBuffer && store.isTrainable($0) }
        let parameters = store.values
        parameters.withUnsafeBufferPointer { vp in store.grads.withUnsafeMutableBufferPointer { gp in
            let v = vp.baseAddress!, g = gp.baseAddress!
            func param(_ id: Int) -> UnsafePointer<Float> { v + offsets[id] }
            func grad(_ id: Int?) -> UnsafeMutablePointer<Float>? { id.flatMap { trainable[$0] ? g + offsets[$0] : nil } }
            for k in nodes.indices.reversed() {
                let node = nodes[k], out = inputCount + k
                guard let dy = grads[out] else { continue }
                grads[out] = nil
                let x = values[node.inputs[0]]!
                var dx: [Tensor] = []
                switch node.op {
                case .conv(let conv, let w, let bias):
                    let dW = grad(w)
                    dx = [conv.backward(dy, input: dW == nil ? nil : x, inputShape: x.shape, weight: param(w), dWeight: dW,
                                        dBias: grad(bias), workspace: workspace)]
                case .batchNorm(let gamma, let beta, _, _, _, _):
                    guard case .normalised(let xhat, let invstd, _, let batch)? = frame.saved[k] else { preconditionFailure("batch norm record") }
                    dx = [Normalization.backward(dy, xhat: xhat, invstd: invstd, batchStatistics: batch, gamma: param(gamma),
                                                 dGamma: grad(gamma), dBeta: grad(beta))]
                case .activation(let f): dx = [f.backward(dy, saved: f.derivativeReadsInput ? x.data : values[out]!.data)]
                case .add, .mul:
                    let (da, db) = Broadcast.backward(dy, x, values[node.inputs[1]]!, multiply: node.op == .mul)
                    dx = [da, db]
                case .pool(let pooling):
                    var argmax: [Int] = []
                    if case .argmax(let a, _)? = frame.saved[k] { argmax = a }
                    dx = [pooling.backward(dy, argmax: argmax, inputShape: x.shape)]
                case .globalAveragePool: dx = [Spatial.planeMeansBackward(dy.data, inputShape: x.shape)]
                case .flatten, .identity, .dropout, .reshape: dx = [Tensor(shape: x.shape, data: dy.data)]
                case .reduceMean: dx = [Spatial.planeMeansBackward(dy.data, inputShape: x.shape)]
                case .gemm(let dense, let w, let bias):
                    let dW = grad(w)
                    dx = [dense.backward(dy, input: dW == nil ? nil : Tensor(shape: [x.shape[0], x.perSample], data: x.data),
                                         inputShape: x.shape, weight: param(w), dWeight: dW, dBias: grad(bias))]
                case .upsample: dx = [Spatial.upsampleBackward(dy, inputShape: x.shape)]
                }
                values[out] = nil
                for (i, d) in zip(node.inputs, dx) { accumulate(i, d) }
            }
        } }
        return (0..<inputCount).map { grads[$0] ?? Tensor(zeros: frame.values[$0]!.shape) }
    }
}

/// A graph with its own copy of the parameters, for inference only: a Sendable value, so any number of
/// threads run it at once without a lock (each call has its own scratch), and later training of the store it
/// came from does not change it.
public struct InferenceGraph: Sendable {
    public let graph: Graph
    let weights: Graph.Weights

    public init(_ graph: Graph, store: ParameterStore) {
        _ = BLAS.configured
        self.graph = graph
        weights = Graph.Weights(store)
    }

    /// Evaluation-mode outputs (running statistics normalise).
    public func forward(_ inputs: [Tensor]) -> [Tensor] {
        graph.run(inputs, weights, training: false, save: false, workspace: Workspace()).outputs
    }
}

/// A graph in the place of a layer (one input, one output), e.g. a block of an imported network.
///
/// Each batch-norm node gets a `BatchNorm2d` over its entries (`norms`), so a graph's batch norms honour the modes a
/// built-in batch norm has: `frozenStatistics` (training passes normalise with the running statistics) and
/// `cumulativeBatches` (bn-stats re-estimation: batch statistics in every pass, folded in as an equal-weight average).
public final class GraphLayer: Layer {
    public let graph: Graph
    let store: ParameterStore
    /// One per batch-norm node, in node order.
    public let norms: [BatchNorm2d]
    let normNodes: [Int]

    public init(_ graph: Graph, store: ParameterStore) {
        precondition(graph.inputCount == 1 && graph.outputs.count == 1, "a graph layer has one input and one output")
        self.graph = graph
        self.store = store
        var norms: [BatchNorm2d] = [], nodes: [Int] = []
        for (k, node) in graph.nodes.enumerated() {
            if case .batchNorm(let gamma, let beta, let mean, let variance, let eps, let momentum) = node.op {
                norms.append(BatchNorm2d(adopting: store, gamma: gamma, beta: beta, mean: mean, variance: variance, eps: eps, momentum: momentum))
                nodes.append(k)
            }
        }
        self.norms = norms
        normNodes = nodes
    }

    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        var modes: [Int: Graph.NormMode] = [:]
        for (bn, k) in zip(norms, normNodes) {
            // As BatchNorm2d.forward.
            let batch = (training && !bn.frozenStatistics) || bn.cumulativeBatches != nil
            let update: Float? = batch && (bn.cumulativeBatches != nil || training) ? (bn.cumulativeBatches.map { 1 / Float($0 + 1) } ?? bn.momentum) : nil
            modes[k] = Graph.NormMode(batchStatistics: batch, update: update)
        }
        let y = graph.forward([x], store: store, training: training, tape: tape, modes: modes)[0]
        for bn in norms { if let k = bn.cumulativeBatches { bn.cumulativeBatches = k + 1 } }
        if let tape, tape.saving, let frame = tape.frames.popLast() { tape.push(self, .graph(frame)) }
        return y
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        guard case .graph(let frame) = tape.pop(self) else { preconditionFailure("graph layer: foreign tape record") }
        return graph.backward([dy], frame: frame, store: store, workspace: tape.workspace)[0]
    }
}
