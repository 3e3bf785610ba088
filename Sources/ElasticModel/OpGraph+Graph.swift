import Learning

extension OpGraph {
    /// The dataflow graph of any engine `Graph` with one input and one output (an imported network), for block
    /// detection. `shapes` gives each graph value's per-sample shape (value 0 the input).
    ///
    /// Modules come from the node names as PyTorch's exporter writes them (`/layer1/layer1.0/conv1/Conv`): the
    /// second path component when it numbers an element of the first (`layer1.0`, `features.3`), else the first
    /// (`layer1`, `conv1`). Two fixed parts are named as the cut-node method expects: `head` is everything from the
    /// last global pool (GlobalAveragePool or ReduceMean) that every path passes, and `stem` the nodes before the
    /// first convolution of the second module that holds one (the first module's conv with its activation and pool).
    public init(graph: Graph, shapes: [[Int]]) {
        precondition(graph.inputCount == 1 && graph.outputs.count == 1, "one input and one output")
        precondition(shapes.count == graph.valueCount, "one shape per value")
        var ops: [Op] = [], modules: [String] = []
        for node in graph.nodes {
            switch node.op {
            case .conv: ops.append(.conv)
            case .gemm: ops.append(.linear)
            case .batchNorm: ops.append(.norm)
            case .pool, .globalAveragePool, .reduceMean: ops.append(.pool)
            case .add, .mul: ops.append(.add)
            case .upsample: ops.append(.upsample)
            case .activation, .flatten, .reshape, .identity, .dropout: ops.append(.activation)
            }
            modules.append(Self.module(of: node.name))
        }
        // Node k of the graph is OpGraph node k + 1 (0 is the input); edges follow the values read.
        var temp = OpGraph()
        temp.add("input", module: "input", op: .input, shape: shapes[0], inputs: [])
        for (k, node) in graph.nodes.enumerated() {
            temp.add(node.name, module: "", op: ops[k], shape: shapes[k + 1], inputs: node.inputs)
        }
        let exit = graph.outputs[0]
        temp.add("output", module: "output", op: .output, shape: shapes[exit], inputs: [exit])
        let cuts = Set(temp.cutNodes)
        var headStart = graph.nodes.count
        for (k, node) in graph.nodes.enumerated().reversed() where cuts.contains(k + 1) {
            switch node.op {
            case .globalAveragePool, .reduceMean: headStart = k
            default: continue
            }
            break
        }
        for k in headStart..<graph.nodes.count { modules[k] = "head" }
        if let first = ops.firstIndex(where: \.isCompressible),
           let second = ops.indices.first(where: { $0 < headStart && ops[$0].isCompressible && modules[$0] != modules[first] }) {
            for k in 0..<second where modules[k] != modules[second] { modules[k] = "stem" }
        }
        self.init()
        add("input", module: "input", op: .input, shape: shapes[0], inputs: [])
        for (k, node) in graph.nodes.enumerated() {
            add(node.name, module: modules[k], op: ops[k], shape: shapes[k + 1], inputs: node.inputs)
        }
        add("output", module: "output", op: .output, shape: shapes[exit], inputs: [exit])
    }

    /// `layer1.0` of `/layer1/layer1.0/conv1/Conv`, `conv1` of `/conv1/Conv`, `features.3` of `/features/features.3/...`.
    static func module(of name: String) -> String {
        let parts = name.split(separator: "/").map(String.init).dropLast()
        guard let top = parts.first else { return name }
        if parts.count >= 2, parts[parts.startIndex + 1].hasPrefix(top + ".") { return parts[parts.startIndex + 1] }
        return top
    }
}
