import Learning

/// The dataflow graph of a network at operator granularity: what block detection reasons about.
///
/// Nodes are in topological order (every edge goes from a lower to a higher index); node 0 is the input and the
/// last node the output. Each node names the module that owns it (`stem`, `blocks.3`, `head`), as a PyTorch
/// module tree would.
public struct OpGraph: Sendable, Equatable {
    public enum Op: String, Sendable, Codable {
        case input, conv, linear, norm, activation, pool, add, upsample, output
        /// Layers whose width can be pruned.
        public var isCompressible: Bool { self == .conv || self == .linear }
    }

    public struct Node: Sendable, Equatable {
        public var name: String
        public var module: String
        public var op: Op
        /// (C, H, W) of the node's output, or (features) after the pool.
        public var outputShape: [Int]

        public init(name: String, module: String, op: Op, outputShape: [Int]) {
            self.name = name
            self.module = module
            self.op = op
            self.outputShape = outputShape
        }
    }

    public private(set) var nodes: [Node] = []
    /// Edges as (from, to) node indices, from < to.
    public private(set) var edges: [(Int, Int)] = []

    public init() {}

    public static func == (a: OpGraph, b: OpGraph) -> Bool {
        a.nodes == b.nodes && a.edges.map { [$0.0, $0.1] } == b.edges.map { [$0.0, $0.1] }
    }

    /// Appends a node fed by `inputs` (indices of earlier nodes) and returns its index.
    @discardableResult
    public mutating func add(_ name: String, module: String, op: Op, shape: [Int], inputs: [Int]) -> Int {
        precondition(inputs.allSatisfy { $0 < nodes.count }, "inputs must precede the node (topological order)")
        nodes.append(Node(name: name, module: module, op: op, outputShape: shape))
        for i in inputs { edges.append((i, nodes.count - 1)) }
        return nodes.count - 1
    }

    /// The graph of a stem → blocks → head `Model` as it runs now (its current block at every position).
    public init(model: Model) {
        let (c, h, w) = (model.inputShape[0], model.inputShape[1], model.inputShape[2])
        var last = add("input", module: "input", op: .input, shape: [c, h, w], inputs: [])
        var shape = [c, h, w]
        func chain(_ layers: [Layer], module: String, from start: Int, shape inShape: [Int], into g: inout OpGraph) -> (Int, [Int]) {
            var at = start, s = inShape
            for (k, layer) in layers.enumerated() {
                let (op, out, name) = OpGraph.describe(layer, input: s, fallbackName: "\(module).\(k)")
                at = g.add(name, module: module, op: op, shape: out, inputs: [at])
                s = out
            }
            return (at, s)
        }
        (last, shape) = chain(model.stem.layers, module: "stem", from: last, shape: shape, into: &self)
        for block in model.blocks {
            let entry = last
            var exit = entry, outShape = shape
            if let main = block.main { (exit, outShape) = chain(main.layers, module: block.name, from: entry, shape: shape, into: &self) }
            if block.residual {
                var side = entry
                if let s = block.shortcut { (side, outShape) = chain(s.layers, module: block.name, from: entry, shape: shape, into: &self) }
                if block.main != nil {
                    exit = add("\(block.name).add", module: block.name, op: .add, shape: outShape, inputs: [exit, side])
                } else {
                    exit = side
                }
            }
            if block.finalReLU != nil {
                exit = add("\(block.name).relu", module: block.name, op: .activation, shape: outShape, inputs: [exit])
            }
            if exit == entry {   // an identity skip: keep one node so the module is visible in the graph
                exit = add("\(block.name).identity", module: block.name, op: .activation, shape: outShape, inputs: [entry])
            }
            last = exit
            shape = outShape
        }
        let pooled = add("pool", module: "head", op: .pool, shape: [shape[0]], inputs: [last])
        let logits = add("head", module: "head", op: .linear, shape: [model.head.outFeatures], inputs: [pooled])
        add("output", module: "output", op: .output, shape: [model.head.outFeatures], inputs: [logits])
    }

    static func describe(_ layer: Layer, input s: [Int], fallbackName: String) -> (Op, [Int], String) {
        switch layer {
        case let conv as Conv2d:
            let (ho, wo) = conv.outputSize(s[1], s[2])
            return (.conv, [conv.outChannels, ho, wo], conv.name)
        case let bn as BatchNorm2d:
            return (.norm, s, bn.name)
        case let pool as Pool2d:
            return (.pool, [s[0], (s[1] - pool.kernel) / pool.stride + 1, (s[2] - pool.kernel) / pool.stride + 1], fallbackName)
        case let up as Upsample:
            return (.upsample, [s[0], up.height, up.width], fallbackName)
        default:
            return (.activation, s, fallbackName)
        }
    }

    /// Nodes every input → output path passes through (articulation points of the flow).
    ///
    /// In topological order, a node is on every path exactly when no edge jumps over it: a path's indices rise, so
    /// it crosses the node's position either through the node or along an edge that skips it.
    public var cutNodes: [Int] {
        var reach = 0   // the furthest target of any edge leaving a node before the current one
        var outgoing = [[Int]](repeating: [], count: nodes.count)
        for (a, b) in edges { outgoing[a].append(b) }
        var cuts: [Int] = []
        for v in nodes.indices {
            if reach <= v { cuts.append(v) }
            reach = max(reach, outgoing[v].max() ?? v)
        }
        return cuts
    }
}
