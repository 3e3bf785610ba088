import Learning

/// A graph-defined network in a manifest (the `graph` family, e.g. an imported ONNX classifier): the stem and every
/// variant of every block position as op lists over numbered values, the head implied (global average pool, the
/// optional hidden classifier layers `head`, then `head.weight`/`head.bias`, a linear layer). Tensor names are not in the manifest: they follow from where a node
/// sits (`stem.conv3.weight`, `blocks.2.bn5.running_mean`, `blocks.2.s50.conv1.weight`), so a manifest can name no
/// tensor outside its own part, and the set of tensors the weights must hold is computed by arithmetic.
public struct GraphSpec: Codable, Sendable, Equatable {
    /// One node: its op, the values it reads (value 0 is the part's input, value k + 1 node k's output) and the
    /// attributes of its op (the others absent).
    public struct Node: Codable, Sendable, Equatable {
        public var op: String
        public var inputs: [Int]
        public var kernel: Int?, stride: Int?, padding: Int?, groups: Int?
        /// Output channels of a convolution, output features of a gemm.
        public var out: Int?
        public var bias: Bool?
        public var eps: Float?, momentum: Float?
        public var alpha: Float?, beta: Float?, min: Float?, max: Float?
        public var countIncludePad: Bool?
        public var keepDims: Bool?
        /// Reshape: the per-sample shape.
        public var shape: [Int]?
        /// Upsample: the output size.
        public var height: Int?, width: Int?

        public init(op: String, inputs: [Int]) { self.op = op; self.inputs = inputs }

        enum CodingKeys: String, CodingKey {
            case op, inputs, kernel, stride, padding, groups, out, bias, eps, momentum, alpha, beta, min, max, shape, height, width
            case countIncludePad = "count_include_pad"
            case keepDims = "keep_dims"
        }
    }

    /// A one-input graph: nodes in order and the value it returns.
    public struct Part: Codable, Sendable, Equatable {
        public var nodes: [Node]
        public var output: Int
        public init(nodes: [Node], output: Int) { self.nodes = nodes; self.output = output }
    }

    public var stem: Part
    /// `blocks[p][v]`: variant v of position p, in the order of the manifest's `blocks[p].variants`.
    public var blocks: [[Part]]
    /// The classifier's hidden layers (gemms and element-wise ops) from the pooled features (C) to the features the
    /// final linear layer reads, tensors under `head.hidden.`; absent for a pool and one linear layer.
    public var head: Part?

    public init(stem: Part, blocks: [[Part]], head: Part? = nil) { self.stem = stem; self.blocks = blocks; self.head = head }

    /// Tensor-name prefix of the hidden classifier layers.
    public static let headPrefix = "head.hidden."

    public static let ops: [String] = ["conv", "batch_norm", "relu", "clip", "sigmoid", "hard_sigmoid", "hard_swish", "add", "mul",
                                       "max_pool", "average_pool", "global_average_pool", "flatten", "gemm", "upsample", "identity",
                                       "reduce_mean", "reshape", "dropout"]
    /// Bounds of a part: nodes, channels or features of a value, one spatial size, floats of one value (per sample).
    public static let maxNodes = 2048
    public static let maxChannels = 4096
    public static let maxSpatial = 1024
    public static let maxValueFloats = 1 << 24
}

/// What checking a part found: the per-sample shape of every value and the tensors its nodes own.
struct CheckedPart {
    var shapes: [[Int]]
    var tensors: [(name: String, shape: [Int])]
    var outputShape: [Int]
}

extension GraphSpec.Part {
    /// Checks every node against the op's rules and the bounds, by arithmetic only, from the part's input shape,
    /// naming the field at fault (`architecture.graph.blocks[2][1].nodes[4].kernel`).
    func check(input: [Int], prefix: String, field: String) throws(PackageError) -> CheckedPart {
        typealias S = GraphSpec
        func bad(_ f: String, _ why: String) -> PackageError { .invalidManifest(field: f, message: why) }
        guard !nodes.isEmpty, nodes.count <= S.maxNodes else { throw bad("\(field).nodes", "1...\(S.maxNodes) nodes") }
        var shapes = [input]
        var tensors: [(String, [Int])] = []
        for (k, node) in nodes.enumerated() {
            let f = "\(field).nodes[\(k)]"
            guard S.ops.contains(node.op) else { throw bad("\(f).op", "unknown op \(node.op.prefix(64)); known: \(S.ops.joined(separator: ", "))") }
            let arity = node.op == "add" || node.op == "mul" ? 2 : 1
            guard node.inputs.count == arity else { throw bad("\(f).inputs", "\(node.op) reads \(arity) value(s)") }
            for (i, v) in node.inputs.enumerated() where !(0...k).contains(v) {
                throw bad("\(f).inputs[\(i)]", "value \(v) is not computed before this node (values 0...\(k); a cycle or a forward reference)")
            }
            let x = shapes[node.inputs[0]]
            func int(_ value: Int?, _ name: String, _ range: ClosedRange<Int>) throws(PackageError) -> Int {
                guard let value else { throw bad("\(f).\(name)", "missing") }
                guard range.contains(value) else { throw bad("\(f).\(name)", "must be in \(range.lowerBound)...\(range.upperBound)") }
                return value
            }
            func real(_ value: Float?, _ name: String, _ range: ClosedRange<Float>) throws(PackageError) -> Float {
                guard let value else { throw bad("\(f).\(name)", "missing") }
                guard value.isFinite, range.contains(value) else { throw bad("\(f).\(name)", "must be a finite number in \(range.lowerBound)...\(range.upperBound)") }
                return value
            }
            func spatial() throws(PackageError) {
                guard x.count == 3 else { throw bad("\(f).inputs", "\(node.op) needs a (C, H, W) value, value \(node.inputs[0]) is \(x)") }
            }
            var y = x
            switch node.op {
            case "conv":
                try spatial()
                let kernel = try int(node.kernel, "kernel", 1...15), stride = try int(node.stride, "stride", 1...8)
                let padding = try int(node.padding, "padding", 0...16), groups = try int(node.groups, "groups", 1...S.maxChannels)
                let out = try int(node.out, "out", 1...S.maxChannels)
                guard x[0] % groups == 0, out % groups == 0 else { throw bad("\(f).groups", "\(groups) does not divide \(x[0]) and \(out) channels") }
                let (h, w) = ((x[1] + 2 * padding - kernel) / stride + 1, (x[2] + 2 * padding - kernel) / stride + 1)
                guard x[1] + 2 * padding >= kernel, x[2] + 2 * padding >= kernel else { throw bad("\(f).kernel", "larger than the padded input \(x)") }
                y = [out, h, w]
                tensors.append(("\(prefix)conv\(k).weight", [out, x[0] / groups, kernel, kernel]))
                if node.bias ?? false { tensors.append(("\(prefix)conv\(k).bias", [out])) }
            case "batch_norm":
                try spatial()
                _ = try real(node.eps, "eps", 1e-12...1)
                _ = try real(node.momentum, "momentum", 0...1)
                for t in ["weight", "bias", "running_mean", "running_var"] { tensors.append(("\(prefix)bn\(k).\(t)", [x[0]])) }
            case "clip":
                let lo = try real(node.min, "min", -1e6...1e6), hi = try real(node.max, "max", -1e6...1e6)
                guard lo <= hi else { throw bad("\(f).max", "below min") }
            case "hard_sigmoid":
                _ = try real(node.alpha, "alpha", -1e6...1e6)
                _ = try real(node.beta, "beta", -1e6...1e6)
            case "relu", "sigmoid", "hard_swish", "identity", "dropout":
                break
            case "add", "mul":
                let z = shapes[node.inputs[1]]
                let fits = x == z || (x.count == 3 && z.count == 3 && x[0] == z[0] && (Array(z[1...]) == [1, 1] || Array(x[1...]) == [1, 1]))
                guard fits else { throw bad("\(f).inputs", "operands of shapes \(x) and \(z): equal shapes, or C×H×W with C×1×1") }
                y = x.count == 3 && Array(x[1...]) == [1, 1] ? z : x
            case "max_pool", "average_pool":
                try spatial()
                let kernel = try int(node.kernel, "kernel", 1...64), stride = try int(node.stride, "stride", 1...64)
                let padding = try int(node.padding, "padding", 0...(kernel - 1))
                guard x[1] + 2 * padding >= kernel, x[2] + 2 * padding >= kernel else { throw bad("\(f).kernel", "larger than the padded input \(x)") }
                y = [x[0], (x[1] + 2 * padding - kernel) / stride + 1, (x[2] + 2 * padding - kernel) / stride + 1]
            case "global_average_pool":
                try spatial()
                y = [x[0], 1, 1]
            case "reduce_mean":
                try spatial()
                y = node.keepDims ?? true ? [x[0], 1, 1] : [x[0]]
            case "flatten":
                y = [x.reduce(1, *)]
            case "gemm":
                guard x.count == 1 || (x.count == 3 && x[1] == 1 && x[2] == 1) else { throw bad("\(f).inputs", "gemm reads (features), value is \(x)") }
                let out = try int(node.out, "out", 1...S.maxChannels)
                y = [out]
                tensors.append(("\(prefix)fc\(k).weight", [out, x.reduce(1, *)]))
                if node.bias ?? false { tensors.append(("\(prefix)fc\(k).bias", [out])) }
            case "upsample":
                try spatial()
                y = [x[0], try int(node.height, "height", 1...S.maxSpatial), try int(node.width, "width", 1...S.maxSpatial)]
            case "reshape":
                guard let shape = node.shape, (1...3).contains(shape.count), shape.allSatisfy({ (1...S.maxValueFloats).contains($0) }) else {
                    throw bad("\(f).shape", "1...3 sizes in 1...\(S.maxValueFloats)")
                }
                let (product, overflow) = shape.reduce((1, false)) { acc, d in
                    let r = acc.0.multipliedReportingOverflow(by: d)
                    return (r.partialValue, acc.1 || r.overflow)
                }
                guard !overflow, product == x.reduce(1, *) else { throw bad("\(f).shape", "\(shape) does not hold the \(x.reduce(1, *)) values of \(x)") }
                y = shape
            default:
                throw bad("\(f).op", "unknown op \(node.op)")
            }
            // Every size is bounded here, so no product below can overflow.
            guard y.allSatisfy({ $0 >= 1 }), y.count == 1 || y.count == 3, y.count != 3 || (y[0] <= S.maxChannels && y[1] <= S.maxSpatial && y[2] <= S.maxSpatial),
                  y.reduce(1, *) <= S.maxValueFloats else {
                throw bad(f, "its output \(y) is empty or exceeds the bounds (channels ≤ \(S.maxChannels), sizes ≤ \(S.maxSpatial), ≤ \(S.maxValueFloats) floats)")
            }
            shapes.append(y)
        }
        guard (0...nodes.count).contains(output) else { throw bad("\(field).output", "must be a value in 0...\(nodes.count)") }
        return CheckedPart(shapes: shapes, tensors: tensors, outputShape: shapes[output])
    }

    /// The engine graph of this (checked) part, its tensors registered in `store` under `prefix` with zero values
    /// (batch norms' variance 1) until weights are loaded.
    func build(into store: ParameterStore, prefix: String, input: [Int]) throws -> Graph {
        let checked = try check(input: input, prefix: prefix, field: "part")
        var g = Graph(inputs: 1)
        func register(_ name: String, _ shape: [Int], buffer: Bool = false, one: Bool = false) throws -> Int {
            let n = shape.reduce(1, *)
            return try store.register(prefix + name, shape: shape, values: [Float](repeating: one ? 1 : 0, count: n), buffer: buffer)
        }
        for (k, node) in nodes.enumerated() {
            let x = checked.shapes[node.inputs[0]]
            let op: Graph.Op
            switch node.op {
            case "conv":
                let geometry = Convolution(in: x[0], out: node.out!, kernel: node.kernel!, stride: node.stride!, padding: node.padding!,
                                           groups: node.groups!)
                let w = try register("conv\(k).weight", [node.out!, x[0] / node.groups!, node.kernel!, node.kernel!])
                op = .conv(geometry, weight: w, bias: node.bias ?? false ? try register("conv\(k).bias", [node.out!]) : nil)
            case "batch_norm":
                op = .batchNorm(gamma: try register("bn\(k).weight", [x[0]], one: true), beta: try register("bn\(k).bias", [x[0]]),
                                mean: try register("bn\(k).running_mean", [x[0]], buffer: true),
                                variance: try register("bn\(k).running_var", [x[0]], buffer: true, one: true), eps: node.eps!, momentum: node.momentum!)
            case "relu": op = .activation(.relu)
            case "clip": op = .activation(.clip(min: node.min!, max: node.max!))
            case "sigmoid": op = .activation(.sigmoid)
            case "hard_sigmoid": op = .activation(.hardSigmoid(alpha: node.alpha!, beta: node.beta!))
            case "hard_swish": op = .activation(.hardSwish)
            case "add": op = .add
            case "mul": op = .mul
            case "max_pool": op = .pool(Pooling(.max, kernel: node.kernel!, stride: node.stride!, padding: node.padding!))
            case "average_pool":
                op = .pool(Pooling(.average, kernel: node.kernel!, stride: node.stride!, padding: node.padding!, countIncludePad: node.countIncludePad ?? true))
            case "global_average_pool": op = .globalAveragePool
            case "reduce_mean": op = .reduceMean(keepDims: node.keepDims ?? true)
            case "flatten": op = .flatten
            case "gemm":
                let features = x.reduce(1, *)
                let w = try register("fc\(k).weight", [node.out!, features])
                op = .gemm(Dense(in: features, out: node.out!), weight: w, bias: node.bias ?? false ? try register("fc\(k).bias", [node.out!]) : nil)
            case "upsample": op = .upsample(height: node.height!, width: node.width!)
            case "identity": op = .identity
            case "reshape": op = .reshape(perSample: node.shape!)
            case "dropout": op = .dropout
            default: throw LearningError("unknown op \(node.op)")
            }
            g.add(op, node.inputs, name: prefix + "\(node.op)\(k)")
        }
        g.outputs = [output]
        return g
    }

    /// The part of an engine graph (one input), its tensors' values copied from `store` into `tensors` under the
    /// names `check` declares for `prefix`.
    public init(_ graph: Graph, store: ParameterStore, prefix: String, tensors: inout [String: SafeTensor]) throws {
        precondition(graph.inputCount == 1 && graph.outputs.count == 1)
        func put(_ id: Int, _ name: String) {
            let e = store.entries[id]
            let slab = e.isBuffer ? store.buffers : store.values
            tensors[prefix + name] = SafeTensor(floats: Array(slab[e.offset..<(e.offset + e.count)]), shape: e.shape)
        }
        var nodes: [GraphSpec.Node] = []
        for (k, n) in graph.nodes.enumerated() {
            var node: GraphSpec.Node
            switch n.op {
            case .conv(let c, let w, let b):
                node = .init(op: "conv", inputs: n.inputs)
                (node.kernel, node.stride, node.padding, node.groups, node.out, node.bias) = (c.kernel, c.stride, c.padding, c.groups, c.outChannels, b != nil)
                put(w, "conv\(k).weight")
                if let b { put(b, "conv\(k).bias") }
            case .batchNorm(let gamma, let beta, let mean, let variance, let eps, let momentum):
                node = .init(op: "batch_norm", inputs: n.inputs)
                (node.eps, node.momentum) = (eps, momentum)
                for (id, t) in [(gamma, "weight"), (beta, "bias"), (mean, "running_mean"), (variance, "running_var")] { put(id, "bn\(k).\(t)") }
            case .activation(let a):
                switch a {
                case .relu: node = .init(op: "relu", inputs: n.inputs)
                case .sigmoid: node = .init(op: "sigmoid", inputs: n.inputs)
                case .hardSwish: node = .init(op: "hard_swish", inputs: n.inputs)
                case .clip(let lo, let hi):
                    node = .init(op: "clip", inputs: n.inputs)
                    (node.min, node.max) = (lo, hi)
                case .hardSigmoid(let alpha, let beta):
                    node = .init(op: "hard_sigmoid", inputs: n.inputs)
                    (node.alpha, node.beta) = (alpha, beta)
                }
            case .add: node = .init(op: "add", inputs: n.inputs)
            case .mul: node = .init(op: "mul", inputs: n.inputs)
            case .pool(let p):
                node = .init(op: p.kind == .max ? "max_pool" : "average_pool", inputs: n.inputs)
                (node.kernel, node.stride, node.padding) = (p.kernel, p.stride, p.padding)
                if p.kind == .average { node.countIncludePad = p.countIncludePad }
            case .globalAveragePool: node = .init(op: "global_average_pool", inputs: n.inputs)
            case .flatten: node = .init(op: "flatten", inputs: n.inputs)
            case .gemm(let d, let w, let b):
                node = .init(op: "gemm", inputs: n.inputs)
                (node.out, node.bias) = (d.outFeatures, b != nil)
                put(w, "fc\(k).weight")
                if let b { put(b, "fc\(k).bias") }
            case .upsample(let h, let w):
                node = .init(op: "upsample", inputs: n.inputs)
                (node.height, node.width) = (h, w)
            case .identity: node = .init(op: "identity", inputs: n.inputs)
            case .reduceMean(let keep):
                node = .init(op: "reduce_mean", inputs: n.inputs)
                node.keepDims = keep
            case .reshape(let shape):
                node = .init(op: "reshape", inputs: n.inputs)
                node.shape = shape
            case .dropout: node = .init(op: "dropout", inputs: n.inputs)
            }
            nodes.append(node)
        }
        self.init(nodes: nodes, output: graph.outputs[0])
    }
}

/// The stride that maps a block's input size to its output size, as a 1×1 convolution (the parallel adapter) would.
func adapterStride(from input: [Int], to output: [Int]) -> Int? {
    (1...8).first { s in (input[1] - 1) / s + 1 == output[1] && (input[2] - 1) / s + 1 == output[2] }
}

/// The graph family's network: checked by arithmetic (shapes, bounds, tensors), then built over one store.
enum GraphNetwork {
    struct Checked {
        var stemOutput: [Int]
        /// Per position: input and output (C, H, W) and the adapter stride.
        var positions: [(input: [Int], output: [Int], stride: Int)]
        /// Every tensor of the stem, the variants and the head (adapters are the network's, not the graph's).
        var tensors: [(name: String, shape: [Int])]
        /// Features the final linear layer reads.
        var headFeatures: Int
    }

    /// Ops of the classifier's hidden layers: on feature vectors, no batch norm (nothing there adapts).
    static let classifierOps = ["gemm", "relu", "clip", "sigmoid", "hard_sigmoid", "hard_swish", "identity", "dropout"]

    static func prefix(position p: Int, variant id: String) -> String { id == "s0" ? "blocks.\(p)." : "blocks.\(p).\(id)." }

    /// `ids[p]` names the variants of position p (`s0` first); only their parts are checked.
    static func check(_ spec: GraphSpec, inputShape: [Int], classes: Int, ids: [[String]]) throws(PackageError) -> Checked {
        let field = "architecture.graph"
        func bad(_ f: String, _ why: String) -> PackageError { .invalidManifest(field: f, message: why) }
        let stem = try spec.stem.check(input: inputShape, prefix: "stem.", field: "\(field).stem")
        guard stem.outputShape.count == 3 else { throw bad("\(field).stem.output", "the stem must return a (C, H, W) value, not \(stem.outputShape)") }
        var tensors = stem.tensors
        var positions: [(input: [Int], output: [Int], stride: Int)] = []
        var x = stem.outputShape
        guard ids.count == spec.blocks.count else { throw bad("\(field).blocks", "\(spec.blocks.count) positions, the manifest's blocks \(ids.count)") }
        for (p, parts) in spec.blocks.enumerated() {
            guard !ids[p].isEmpty, ids[p].count <= parts.count else { throw bad("\(field).blocks[\(p)]", "one graph per variant of blocks[\(p)]") }
            var output: [Int]?
            for (v, id) in ids[p].enumerated() {
                let f = "\(field).blocks[\(p)][\(v)]"
                let checked = try parts[v].check(input: x, prefix: prefix(position: p, variant: id), field: f)
                if let output {
                    guard checked.outputShape == output else { throw bad("\(f).output", "shape \(checked.outputShape); the position's original block gives \(output)") }
                } else {
                    guard checked.outputShape.count == 3 else { throw bad("\(f).output", "a block must return a (C, H, W) value, not \(checked.outputShape)") }
                    output = checked.outputShape
                }
                tensors += checked.tensors
            }
            guard let y = output, let stride = adapterStride(from: x, to: y) else {
                throw bad("\(field).blocks[\(p)][0]", "its output size is not its input size at a stride 1...8 (adapters need one)")
            }
            positions.append((x, y, stride))
            x = y
        }
        var features = x[0]
        if let head = spec.head {
            let f = "\(field).head"
            for (k, node) in head.nodes.enumerated() where !Self.classifierOps.contains(node.op) {
                throw bad("\(f).nodes[\(k)].op", "\(node.op.prefix(64)) in the classifier; only \(Self.classifierOps.joined(separator: ", "))")
            }
            let checked = try head.check(input: [x[0]], prefix: GraphSpec.headPrefix, field: f)
            guard checked.outputShape.count == 1 else { throw bad("\(f).output", "the classifier's hidden layers must return features, not \(checked.outputShape)") }
            tensors += checked.tensors
            features = checked.outputShape[0]
        }
        tensors.append(("head.weight", [classes, features]))
        tensors.append(("head.bias", [classes]))
        return Checked(stemOutput: stem.outputShape, positions: positions, tensors: tensors, headFeatures: features)
    }

    /// The model (stem, original blocks, head) and every variant block, `[position][variant]`, over one store with
    /// placeholder values; `ids` as for `check` (nil: the original blocks only).
    static func build(_ spec: GraphSpec, inputShape: [Int], classes: Int, ids: [[String]]? = nil, seed: UInt64 = 0) throws
        -> (model: Model, variantBlocks: [[Block]]) {
        let ids = ids ?? spec.blocks.map { _ in ["s0"] }
        let checked = try check(spec, inputShape: inputShape, classes: classes, ids: ids)
        let store = ParameterStore()
        let stem = GraphLayer(try spec.stem.build(into: store, prefix: "stem.", input: inputShape), store: store)
        var all: [[Block]] = []
        for (p, position) in checked.positions.enumerated() {
            var blocks: [Block] = []
            for (v, id) in ids[p].enumerated() {
                let body = GraphLayer(try spec.blocks[p][v].build(into: store, prefix: prefix(position: p, variant: id), input: position.input),
                                      store: store)
                blocks.append(Block.graph(name: v == 0 ? "blocks.\(p)" : "blocks.\(p).\(id)", body: body, in: position.input[0],
                                          out: position.output[0], stride: position.stride, inputSize: (position.input[1], position.input[2])))
            }
            all.append(blocks)
        }
        var rng = SeededRandom(seed: seed)
        let last = checked.positions.last?.output ?? checked.stemOutput
        let hidden = try spec.head.map { GraphLayer(try $0.build(into: store, prefix: GraphSpec.headPrefix, input: [last[0]]), store: store) }
        let head = Linear(store, name: "head", in: checked.headFeatures, out: classes, rng: &rng)
        let model = try Model.graphNetwork(store: store, stem: stem, stemOutputShape: checked.stemOutput, blocks: all.map { $0[0] }, head: head,
                                           inputShape: inputShape, headHidden: hidden)
        return (model, all)
    }
}
