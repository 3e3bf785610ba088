import Learning

/// A block of a graph-defined network (an imported one) as graph nodes: what block detection found, with the
/// entry and exit values, its inner convolutions (the ones L1 pruning may narrow) and whether it may be skipped.
public struct GraphBlock: Sendable, Equatable {
    /// Its module(s), joined with `+`.
    public var name: String
    /// Graph node indices, ascending; the last computes `exit`.
    public var nodes: [Int]
    /// The one value it reads from before it, and the value it returns.
    public var entry: Int
    public var exit: Int
    /// Inner convolutions: each one's filters reach only channel-wise nodes (batch norm, activations, depthwise
    /// convolutions, pruned with it) and then the input channels of one ordinary convolution of the block.
    public var innerConvolutions: [PrunableChain]
    /// The block contains a branch joined by an Add that reads its entry (directly: an identity skip, or through
    /// the convolutions of a projection shortcut), so `skip` is a valid variant.
    public var residual: Bool
}

/// One inner convolution, the channel-wise nodes after it and the convolution that reads its channels.
public struct PrunableChain: Sendable, Equatable {
    public var convolution: Int
    public var channelWise: [Int]
    public var consumer: Int
    public var filters: Int
}

public enum GraphBlocks {
    /// The blocks `BlockDetection` finds on `OpGraph(graph:shapes:)`, as node sets of `graph`, in order.
    public static func detect(_ graph: Graph, shapes: [[Int]]) throws -> [GraphBlock] {
        let opGraph = OpGraph(graph: graph, shapes: shapes)
        let found = BlockDetection.detect(opGraph)
        var consumers = [[Int]](repeating: [], count: graph.valueCount)
        for (k, node) in graph.nodes.enumerated() { for v in node.inputs { consumers[v].append(k) } }
        for v in graph.outputs { consumers[v].append(graph.nodes.count) }   // the graph's output is read outside every block
        return try found.blocks.map { detected in
            let modules = Set(detected.modules)
            let nodes = graph.nodes.indices.filter { modules.contains(opGraph.nodes[$0 + 1].module) }
            guard let last = nodes.last else { throw LearningError("block \(detected.modules) has no nodes") }
            let inside = Set(nodes)
            let value = { (k: Int) in graph.inputCount + k }
            let reads = Set(nodes.flatMap { graph.nodes[$0].inputs }).subtracting(nodes.map(value))
            guard reads.count == 1, let entry = reads.first else {
                throw LearningError("block \(detected.modules) reads \(reads.count) values from before it; one is expected")
            }
            for k in nodes where k != last && consumers[value(k)].contains(where: { !inside.contains($0) }) {
                throw LearningError("block \(detected.modules): node \(graph.nodes[k].name) is read after the block")
            }
            var chains: [PrunableChain] = []
            for k in nodes {
                guard case .conv(let c, _, _) = graph.nodes[k].op, c.groups == 1, k != last else { continue }
                var v = value(k), followers: [Int] = []
                chainWalk: while consumers[v].count == 1, let u = consumers[v].first, inside.contains(u) {
                    switch graph.nodes[u].op {
                    case .batchNorm, .activation:
                        followers.append(u)
                    case .conv(let d, _, _) where d.groups == d.inChannels && d.outChannels == d.inChannels && d.groups > 1:
                        followers.append(u)
                    case .conv(let d, _, _) where d.groups == 1:
                        chains.append(PrunableChain(convolution: k, channelWise: followers, consumer: u, filters: c.outChannels))
                        break chainWalk
                    default:
                        break chainWalk
                    }
                    if u == last { break }
                    v = value(u)
                }
            }
            // Residual: an Add of the block reads the entry, or a value computed from it by convolutions and batch
            // norms only (a projection shortcut) while its other operand comes through the main path.
            let residual = nodes.contains { k in
                guard graph.nodes[k].op == .add else { return false }
                return graph.nodes[k].inputs.contains(entry) || graph.nodes[k].inputs.contains { v in
                    var w = v
                    while w != entry, w >= graph.inputCount {
                        let n = graph.nodes[w - graph.inputCount]
                        switch n.op { case .conv, .batchNorm: w = n.inputs[0]; default: return false }
                    }
                    return w == entry
                }
            }
            return GraphBlock(name: detected.modules.joined(separator: "+"), nodes: nodes, entry: entry, exit: value(last),
                              innerConvolutions: chains, residual: residual)
        }
    }

    /// The block as a one-input graph (its entry as input 0) whose inner convolutions keep the `keep` filters of
    /// largest L1 norm each (at least one), with their channel-wise nodes' channels and the consumer's input
    /// channels to match; every parameter copied from `store` into `into` under `prefix` + its name. `keep` 1 is
    /// the block unchanged.
    public static func variant(_ block: GraphBlock, of graph: Graph, store: ParameterStore, keep fraction: Double,
                               into target: ParameterStore, prefix: String) throws -> Graph {
        precondition(fraction > 0 && fraction <= 1)
        // Channels each pruned node keeps: by convolution (its filters), follower and consumer (its input channels).
        var keptOut: [Int: [Int]] = [:], keptIn: [Int: [Int]] = [:]
        for chain in block.innerConvolutions {
            guard case .conv(_, let w, _) = graph.nodes[chain.convolution].op else { continue }
            let weights = store.values[store.entries[w].offset..<(store.entries[w].offset + store.entries[w].count)]
            let keep = max(1, Int((Double(chain.filters) * fraction).rounded()))
            let kept = FilterPruning.keptFilters(weights: Array(weights), filters: chain.filters, keep: keep)
            keptOut[chain.convolution] = kept
            for f in chain.channelWise { keptOut[f] = kept; keptIn[f] = kept }
            keptIn[chain.consumer] = kept
        }
        var g = Graph(inputs: 1)
        var map: [Int: Int] = [block.entry: 0]
        var copied: [Int: Int] = [:]
        func copy(_ id: Int, rows: [Int]? = nil, columns: (inner: Int, kept: [Int])? = nil) throws -> Int {
            let e = store.entries[id]
            let slab = e.isBuffer ? store.buffers : store.values
            var data = Array(slab[e.offset..<(e.offset + e.count)])
            var shape = e.shape
            if let rows {
                let per = e.count / e.shape[0]
                data = rows.flatMap { r in data[(r * per)..<((r + 1) * per)] }
                shape[0] = rows.count
            }
            if let (inner, kept) = columns {
                let outer = shape[0], per = data.count / (outer * inner)
                var out: [Float] = []
                out.reserveCapacity(outer * kept.count * per)
                for o in 0..<outer { for c in kept { out += data[((o * inner + c) * per)..<((o * inner + c + 1) * per)] } }
                data = out
                shape[1] = kept.count
            }
            if rows == nil && columns == nil, let done = copied[id] { return done }
            let new = try target.register(prefix + e.name, shape: shape, values: data, buffer: e.isBuffer)
            if rows == nil && columns == nil { copied[id] = new }
            return new
        }
        for k in block.nodes {
            let node = graph.nodes[k]
            let out = keptOut[k], inn = keptIn[k]
            let op: Graph.Op
            switch node.op {
            case .conv(let c, let w, let b):
                let outChannels = out?.count ?? c.outChannels
                let depthwise = c.groups > 1 && c.groups == c.inChannels
                let inChannels = inn?.count ?? c.inChannels
                let geometry = Convolution(in: inChannels, out: outChannels, kernel: c.kernel, stride: c.stride, padding: c.padding,
                                           groups: depthwise ? inChannels : c.groups)
                let weight = try copy(w, rows: out, columns: depthwise ? nil : inn.map { (c.inChannels, $0) })
                op = .conv(geometry, weight: weight, bias: try b.map { try copy($0, rows: out) })
            case .batchNorm(let gamma, let beta, let mean, let variance, let eps, let momentum):
                op = .batchNorm(gamma: try copy(gamma, rows: out), beta: try copy(beta, rows: out), mean: try copy(mean, rows: out),
                                variance: try copy(variance, rows: out), eps: eps, momentum: momentum)
            case .gemm(let d, let w, let b):
                op = .gemm(d, weight: try copy(w), bias: try b.map { try copy($0) })
            default:
                op = node.op
            }
            let inputs = try node.inputs.map { v -> Int in
                guard let m = map[v] else { throw LearningError("block \(block.name) reads value \(v) from outside") }
                return m
            }
            map[graph.inputCount + k] = g.add(op, inputs, name: node.name)
        }
        g.outputs = [map[block.exit]!]
        return g
    }
}

extension GraphBlocks {
    /// The `skip` variant of a residual block as a one-input graph: the Add's shortcut operand (the entry itself, or
    /// its projection convolutions and batch norms) followed by the nodes after the Add (the final activation),
    /// so the block's main path is gone and its input and output shapes stay. Nil for a block that is not residual.
    public static func skipVariant(_ block: GraphBlock, of graph: Graph, store: ParameterStore, into target: ParameterStore,
                                   prefix: String) throws -> Graph? {
        guard block.residual else { return nil }
        let value = { (k: Int) in graph.inputCount + k }
        // The join: the first Add whose operand reaches the entry through convs and batch norms only.
        func shortcutPath(from v: Int) -> [Int]? {
            var path: [Int] = [], w = v
            while w != block.entry {
                guard w >= graph.inputCount else { return nil }
                let k = w - graph.inputCount
                switch graph.nodes[k].op { case .conv, .batchNorm: path.append(k); w = graph.nodes[k].inputs[0]; default: return nil }
            }
            return path.reversed()
        }
        guard let (join, path) = block.nodes.lazy.compactMap({ k -> (Int, [Int])? in
            guard graph.nodes[k].op == .add else { return nil }
            for v in graph.nodes[k].inputs { if let p = shortcutPath(from: v) { return (k, p) } }
            return nil
        }).first else { return nil }
        let after = block.nodes.filter { $0 > join }
        guard after.allSatisfy({ if case .activation = graph.nodes[$0].op { return true } else { return false } }) else { return nil }
        var g = Graph(inputs: 1)
        var map: [Int: Int] = [block.entry: 0]
        var copied: [Int: Int] = [:]
        func copy(_ id: Int) throws -> Int {
            if let c = copied[id] { return c }
            let e = store.entries[id]
            let slab = e.isBuffer ? store.buffers : store.values
            let new = try target.register(prefix + e.name, shape: e.shape, values: Array(slab[e.offset..<(e.offset + e.count)]), buffer: e.isBuffer)
            copied[id] = new
            return new
        }
        for k in path {
            let node = graph.nodes[k]
            let op: Graph.Op
            switch node.op {
            case .conv(let c, let w, let b): op = .conv(c, weight: try copy(w), bias: try b.map(copy))
            case .batchNorm(let gamma, let beta, let mean, let variance, let eps, let momentum):
                op = .batchNorm(gamma: try copy(gamma), beta: try copy(beta), mean: try copy(mean), variance: try copy(variance),
                                eps: eps, momentum: momentum)
            default: op = node.op
            }
            map[value(k)] = g.add(op, [map[node.inputs[0]]!], name: node.name)
        }
        var last = path.last.map { map[value($0)]! } ?? 0
        if path.isEmpty && after.isEmpty { last = g.add(.identity, [0], name: block.name + ".skip") }
        for k in after {
            last = g.add(graph.nodes[k].op, [last], name: graph.nodes[k].name)
        }
        g.outputs = [last]
        return g
    }

    /// The whole network with the blocks at the given positions replaced by one-input graphs over the same store
    /// (variants registered into it with `variant`/`skipVariant`), everything else as it is.
    public static func compose(_ graph: Graph, blocks: [GraphBlock], replacing: [Int: Graph]) -> Graph {
        var g = Graph(inputs: graph.inputCount)
        var map = Array(0..<graph.inputCount)
        map.reserveCapacity(graph.valueCount)
        var owner = [Int: Int]()
        for (p, block) in blocks.enumerated() where replacing[p] != nil { for k in block.nodes { owner[k] = p } }
        for (k, node) in graph.nodes.enumerated() {
            if let p = owner[k] {
                let block = blocks[p]
                if k == block.nodes.last!, let sub = replacing[p] {
                    var inner = [map[block.entry]]
                    for n in sub.nodes { inner.append(g.add(n.op, n.inputs.map { inner[$0] }, name: n.name)) }
                    map.append(inner[sub.outputs[0]])
                } else {
                    map.append(-1)   // a node of a replaced block: nothing outside the block reads it
                }
                continue
            }
            map.append(g.add(node.op, node.inputs.map { map[$0] }, name: node.name))
        }
        g.outputs = graph.outputs.map { map[$0] }
        return g
    }
}
