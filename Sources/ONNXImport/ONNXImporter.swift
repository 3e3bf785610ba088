import Learning
import ONNX

/// An ONNX classifier as an engine graph: the graph, the store holding its parameters (the file's initializers,
/// by their names in the file) and what the conversion found.
public struct ImportedNetwork {
    public var graph: Graph
    public let store: ParameterStore
    /// The per-sample input the graph was built for.
    public var input: ONNXInputSpec
    /// Width of the logits.
    public var classes: Int
    /// Per-sample shape of every graph value (value id → shape without the batch axis).
    public var valueShapes: [[Int]]
    /// Batch norms the importer put back after convolutions PyTorch had folded them into, as graph node indices.
    public var insertedBatchNorms: [Int]
    /// False when the file carried no weights and the parameters were initialised here (a structure-only copy).
    public var hasSourceWeights: Bool
}

/// What to do with the convolutions of an eval-mode export, whose batch norms PyTorch folded into them.
public enum BatchNormReinsertion: Sendable {
    /// The graph as the file computes it.
    case none
    /// A batch norm after every folded convolution (its weight renamed `onnx::Conv_NNN` by the exporter), set to
    /// the identity; `ONNXImporter.estimateStatistics` then gives it statistics without changing the function.
    case afterFoldedConvolutions
}

/// Converts a validated `ONNXGraph` into the engine's `Graph`. Anything the engine cannot compute exactly (an
/// asymmetric pad, a non-square kernel, a constant operand, a broadcast other than (N, C, 1, 1)) is an
/// `ONNXError` naming the node and the op, never an approximate network.
public enum ONNXImporter {
    /// Momentum of the batch norms the graph gets (PyTorch's default), for adaptation that updates running statistics.
    public static let batchNormMomentum: Float = 0.1

    public static func convert(_ onnx: ONNXGraph, input spec: ONNXInputSpec, batchNorm: BatchNormReinsertion = .none,
                               seed: UInt64 = 1) throws -> ImportedNetwork {
        let shapes = try onnx.inferShapes(input: spec)
        let store = ParameterStore()
        var rng = SeededRandom(seed: seed)
        var graph = Graph(inputs: 1)
        var value: [String: Int] = [onnx.input.name: 0]
        var valueShapes: [[Int]] = [[spec.channels, spec.height, spec.width]]
        var parameterIDs: [String: Int] = [:]
        var inserted: [Int] = []

        func perSample(_ name: String, _ node: ONNXNode) throws -> [Int] {
            guard let dims = shapes[name], dims.first == .batch else {
                throw ONNXError(.unsupportedShape, node: node.name, op: node.opType,
                                "tensor '\(name)' has shape \(shapes[name].map { "\($0)" } ?? "?"); the batch axis first is expected")
            }
            return try dims.dropFirst().map { d in
                guard case .fixed(let v) = d else {
                    throw ONNXError(.unsupportedShape, node: node.name, op: node.opType, "tensor '\(name)' has the batch axis off axis 0")
                }
                return v
            }
        }
        /// The store id of an initializer, registered on first use; a weightless file's gets a seeded initial value.
        func parameter(_ name: String, _ node: ONNXNode, role: ParameterRole) throws -> Int {
            if let id = parameterIDs[name] { return id }
            guard let t = onnx.initializers[name] else {
                throw ONNXError(.malformed, node: node.name, op: node.opType, "parameter '\(name)' is not an initializer")
            }
            let values = t.values.isEmpty && t.elementCount > 0 ? role.initial(t.dims, &rng) : t.values
            do {
                let id = try store.register(name, shape: t.dims, values: values, buffer: role.isBuffer)
                parameterIDs[name] = id
                return id
            } catch {
                throw ONNXError(.malformed, node: node.name, op: node.opType, "parameter '\(name)': \(error)")
            }
        }
        func activation(_ name: String, _ node: ONNXNode) throws -> Int {
            guard let v = value[onnx.resolve(name)] else {
                if onnx.initializers[name] != nil {
                    throw ONNXError(.unsupportedOp, node: node.name, op: node.opType,
                                    "operand '\(name)' is a constant; only operands computed from the input are supported")
                }
                throw ONNXError(.malformed, node: node.name, op: node.opType, "input '\(name)' is not computed before this node")
            }
            return v
        }
        func square(_ pair: ONNXPair, _ pads: ONNXPads, what: String, _ node: ONNXNode) throws {
            guard pair.h == pair.w else {
                throw ONNXError(.unsupportedAttribute, node: node.name, op: node.opType,
                                "a \(pair.h)×\(pair.w) \(what) is not supported; only square ones")
            }
            guard pads.top == pads.left, pads.top == pads.bottom, pads.top == pads.right else {
                throw ONNXError(.unsupportedAttribute, node: node.name, op: node.opType,
                                "pads [\(pads.top), \(pads.left), \(pads.bottom), \(pads.right)] are not supported; only equal pads on all sides")
            }
        }

        for node in onnx.nodes {
            let x = try activation(node.inputs[0], node)
            let outShape = try perSample(node.output, node)
            var op: Graph.Op
            var inputs = [x]
            switch node.op {
            case .conv(let c):
                try square(c.kernel, c.pads, what: "kernel", node)
                guard c.stride.h == c.stride.w else {
                    throw ONNXError(.unsupportedAttribute, node: node.name, op: node.opType,
                                    "strides [\(c.stride.h), \(c.stride.w)] are not supported; only equal strides")
                }
                let geometry = Convolution(in: c.inChannelsPerGroup * c.group, out: c.outChannels, kernel: c.kernel.h,
                                           stride: c.stride.h, padding: c.pads.top, groups: c.group)
                op = .conv(geometry, weight: try parameter(c.weight, node, role: .convWeight),
                           bias: try c.bias.map { try parameter($0, node, role: .zero) })
            case .batchNormalization(let bn):
                op = .batchNorm(gamma: try parameter(bn.scale, node, role: .one), beta: try parameter(bn.bias, node, role: .zero),
                                mean: try parameter(bn.mean, node, role: .runningMean),
                                variance: try parameter(bn.variance, node, role: .runningVariance),
                                eps: bn.epsilon, momentum: batchNormMomentum)
            case .relu: op = .activation(.relu)
            case .sigmoid: op = .activation(.sigmoid)
            case .hardSwish: op = .activation(.hardSwish)
            case .hardSigmoid(let alpha, let beta): op = .activation(.hardSigmoid(alpha: alpha, beta: beta))
            case .clip(let lo, let hi): op = .activation(.clip(min: lo, max: hi))
            case .add, .mul:
                let y = try activation(node.inputs[1], node)
                let (a, b) = (valueShapes[x], valueShapes[y])
                let fits = a == b || (a.count == 3 && b.count == 3 && a[0] == b[0] && ((a[1...] == [1, 1]) || (b[1...] == [1, 1])))
                guard fits else {
                    throw ONNXError(.unsupportedShape, node: node.name, op: node.opType,
                                    "operands of per-sample shapes \(a) and \(b) are not supported; equal shapes or C×H×W with C×1×1")
                }
                inputs = [x, y]
                op = node.op == .add ? .add : .mul
            case .maxPool(let p), .averagePool(let p, _):
                try square(p.kernel, p.pads, what: "window", node)
                guard p.stride.h == p.stride.w else {
                    throw ONNXError(.unsupportedAttribute, node: node.name, op: node.opType,
                                    "strides [\(p.stride.h), \(p.stride.w)] are not supported; only equal strides")
                }
                var includePad = true
                if case .averagePool(_, let count) = node.op { includePad = count }
                guard p.pads.top < p.kernel.h else {
                    throw ONNXError(.unsupportedAttribute, node: node.name, op: node.opType,
                                    "pad \(p.pads.top) is not smaller than the \(p.kernel.h)-wide window")
                }
                if case .maxPool = node.op {
                    op = .pool(Pooling(.max, kernel: p.kernel.h, stride: p.stride.h, padding: p.pads.top))
                } else {
                    op = .pool(Pooling(.average, kernel: p.kernel.h, stride: p.stride.h, padding: p.pads.top, countIncludePad: includePad))
                }
            case .globalAveragePool: op = .globalAveragePool
            case .flatten: op = .flatten
            case .gemm(let weight, let bias):
                let w = onnx.initializers[weight]!.dims
                var biasID: Int?
                if let bias {
                    if onnx.initializers[bias]?.dims.count == 2 {
                        throw ONNXError(.unsupportedShape, node: node.name, op: node.opType,
                                        "a [1, \(w[0])] bias is not supported; a [\(w[0])] one")
                    }
                    biasID = try parameter(bias, node, role: .zero)
                }
                op = .gemm(Dense(in: w[1], out: w[0]), weight: try parameter(weight, node, role: .linearWeight), bias: biasID)
            case .reduceMean(let keep): op = .reduceMean(keepDims: keep)
            case .reshape:
                op = .reshape(perSample: outShape)
            }
            let v = graph.add(op, inputs, name: node.name)
            valueShapes.append(outShape)
            var out = v
            if batchNorm == .afterFoldedConvolutions, case .conv(let c) = node.op, c.weight.hasPrefix("onnx::Conv"),
               !onnx.nodes.contains(where: { n in
                   if case .batchNormalization = n.op { return n.inputs.first == node.output } else { return false }
               }) {
                let base = node.name + "/inserted_bn"
                let n = c.outChannels
                let bn = Graph.Op.batchNorm(
                    gamma: try store.register(base + ".weight", shape: [n], values: .init(repeating: 1, count: n)),
                    beta: try store.register(base + ".bias", shape: [n], values: .init(repeating: 0, count: n)),
                    mean: try store.register(base + ".running_mean", shape: [n], values: .init(repeating: 0, count: n), buffer: true),
                    variance: try store.register(base + ".running_var", shape: [n],
                                                 values: .init(repeating: 1 - insertedEpsilon, count: n), buffer: true),
                    eps: insertedEpsilon, momentum: batchNormMomentum)
                out = graph.add(bn, [v], name: base)
                valueShapes.append(outShape)
                inserted.append(graph.nodes.count - 1)
            }
            value[node.output] = out
        }
        guard let logits = value[onnx.output.tensor] else {
            throw ONNXError(.malformed, "output '\(onnx.output.name)' is not computed")
        }
        guard valueShapes[logits].count == 1 else {
            throw ONNXError(.unsupportedShape, "output '\(onnx.output.name)' has per-sample shape \(valueShapes[logits]); "
                            + "a classifier's (N, classes) logits are expected")
        }
        graph.outputs = [logits]
        return ImportedNetwork(graph: graph, store: store, input: spec, classes: valueShapes[logits][0],
                               valueShapes: valueShapes, insertedBatchNorms: inserted, hasSourceWeights: onnx.hasWeights)
    }

    /// ε of the batch norms put back (PyTorch's default). Their running variance starts at 1 − ε, so
    /// √(var + ε) = 1 and the fresh batch norm is the identity up to float rounding.
    public static let insertedEpsilon: Float = 1e-5

    /// Gives every inserted batch norm the statistics of its input on `batches` (population mean and variance per
    /// channel), with γ = √(var + ε) and β = mean, so the network computes what it did (the batch norm is still the
    /// identity at those statistics) while BN-statistics adaptation, TENT and EATA now have statistics to move.
    public static func estimateStatistics(_ net: ImportedNetwork, on batches: [Tensor]) throws {
        guard !net.insertedBatchNorms.isEmpty else { return }
        guard batches.contains(where: { $0.n > 0 }) else { throw LearningError("no source images to estimate batch-norm statistics on") }
        var probe = net.graph
        probe.outputs = net.insertedBatchNorms.map { probe.nodes[$0].inputs[0] }
        let runner = InferenceGraph(probe, store: net.store)
        let channels = probe.outputs.map { net.valueShapes[$0][0] }
        var sums = channels.map { [Double](repeating: 0, count: $0) }
        var squares = sums
        var counts = [Int](repeating: 0, count: channels.count)
        for x in batches where x.n > 0 {
            let ys = runner.forward([x])
            for (k, y) in ys.enumerated() {
                let c = channels[k], plane = y.perSample / c
                for n in 0..<y.n {
                    for ch in 0..<c {
                        let base = n * y.perSample + ch * plane
                        var s = 0.0, q = 0.0
                        for i in 0..<plane { let v = Double(y.data[base + i]); s += v; q += v * v }
                        sums[k][ch] += s
                        squares[k][ch] += q
                    }
                }
                counts[k] += y.n * (y.perSample / c)
            }
        }
        for (k, node) in net.insertedBatchNorms.enumerated() {
            guard case .batchNorm(let gamma, let beta, let mean, let variance, let eps, _) = net.graph.nodes[node].op else { continue }
            let n = Double(counts[k])
            let m = sums[k].map { $0 / n }
            let v = zip(squares[k], m).map { max($0 / n - $1 * $1, 0) }
            let names = [gamma, beta, mean, variance].map { net.store.entries[$0].name }
            try net.store.set(names[2], m.map { Float($0) })
            try net.store.set(names[3], v.map { Float($0) })
            try net.store.set(names[0], v.map { (Float($0) + eps).squareRoot() })
            try net.store.set(names[1], m.map { Float($0) })
        }
    }
}

/// What an initializer is to the engine, and its initial value when a structure-only file carries none.
enum ParameterRole {
    case convWeight, linearWeight, zero, one, runningMean, runningVariance

    var isBuffer: Bool { self == .runningMean || self == .runningVariance }

    /// He-normal for weights (fan-in from dims 1...), constants otherwise; seeded, so a weightless import is reproducible.
    func initial(_ dims: [Int], _ rng: inout SeededRandom) -> [Float] {
        let count = dims.reduce(1, *)
        switch self {
        case .convWeight, .linearWeight:
            let fanIn = max(dims.dropFirst().reduce(1, *), 1)
            let scale = (2 / Float(fanIn)).squareRoot() * (self == .linearWeight ? 0.5 : 1)
            return (0..<count).map { _ in rng.normal() * scale }
        case .zero, .runningMean: return [Float](repeating: 0, count: count)
        case .one, .runningVariance: return [Float](repeating: 1, count: count)
        }
    }
}
