/// A block found in a network's graph: a single-entry single-exit part that holds compressible layers, so any
/// replacement with the same input and output shapes is a valid network (LegoDNN's block).
public struct DetectedBlock: Sendable, Equatable, Codable {
    /// The module(s) it covers, e.g. `blocks.2`; several when a skip connection crosses module boundaries.
    public var modules: [String]
    /// Names of its compressible layers (convolutions, linear layers), in order.
    public var compressibleLayers: [String]
    public var nodeCount: Int
    /// Whether it contains a branch (a residual connection) rather than a plain chain.
    public var hasBranch: Bool
    public var inputShape: [Int]
    public var outputShape: [Int]
}

/// LegoDNN-style block detection on the dataflow graph.
///
/// 1. The cut nodes (every path passes them) split the graph into single-entry single-exit regions: a residual
///    block becomes one region, a plain chain one region per layer.
/// 2. Regions are grouped by the module that owns their nodes; a region whose nodes belong to several modules
///    (a skip connection that spans two modules) merges those modules into one block, so no block is ever cut
///    inside a branch.
/// 3. The result is maximal: consecutive regions of one module form one block. Groups without a compressible
///    layer fold into the block before them. The input's first group (the stem, which reads the sensor) and
///    the group holding the output (the classifier) are fixed parts, not blocks: they are reported separately.
public enum BlockDetection {
    public struct Result: Sendable, Equatable {
        public var blocks: [DetectedBlock]
        public var stem: DetectedBlock?
        public var head: DetectedBlock?
    }

    public static func detect(_ graph: OpGraph) -> Result {
        let nodes = graph.nodes
        guard nodes.count > 2 else { return Result(blocks: [], stem: nil, head: nil) }
        let cuts = graph.cutNodes
        // Regions: the nodes after one cut node up to and including the next.
        var regions: [Range<Int>] = []
        for (a, b) in zip(cuts, cuts.dropFirst()) { regions.append((a + 1)..<(b + 1)) }
        regions = regions.filter { r in r.contains { nodes[$0].op != .output } }

        // Union modules that share a region.
        var parent: [String: String] = [:]
        func find(_ m: String) -> String {
            var m = m
            while let p = parent[m], p != m { m = p }
            return m
        }
        for r in regions {
            let modules = r.map { nodes[$0].module }.filter { $0 != "output" }
            for m in modules where parent[m] == nil { parent[m] = m }
            for m in modules.dropFirst() { let a = find(modules[0]), b = find(m); if a != b { parent[b] = a } }
        }

        // Consecutive regions with the same module class form a group.
        var groups: [[Range<Int>]] = []
        var lastClass: String?
        for r in regions {
            let cls = find(nodes[r.lowerBound].module)
            if cls == lastClass { groups[groups.count - 1].append(r) } else { groups.append([r]); lastClass = cls }
        }
        func describe(_ g: [Range<Int>]) -> DetectedBlock {
            let members = g.flatMap { Array($0) }
            var modules: [String] = []
            for i in members where !modules.contains(nodes[i].module) { modules.append(nodes[i].module) }
            let entry = members[0]
            let inputShape = graph.edges.first { $0.1 == entry }.map { nodes[$0.0].outputShape } ?? nodes[entry].outputShape
            return DetectedBlock(modules: modules, compressibleLayers: members.filter { nodes[$0].op.isCompressible }.map { nodes[$0].name },
                                 nodeCount: members.count, hasBranch: g.contains { $0.count > 1 && isBranching($0, graph) },
                                 inputShape: inputShape, outputShape: nodes[members.last!].outputShape)
        }
        guard groups.count >= 2 else { return Result(blocks: groups.map(describe), stem: nil, head: nil) }
        let stem = groups.removeFirst()
        let head = groups.removeLast()
        // Fold groups without compressible layers into the block before them.
        var merged: [[Range<Int>]] = []
        for g in groups {
            let compressible = g.contains { r in r.contains { nodes[$0].op.isCompressible } }
            if !compressible, !merged.isEmpty { merged[merged.count - 1] += g } else { merged.append(g) }
        }
        return Result(blocks: merged.map(describe), stem: describe(stem), head: describe(head))
    }

    /// A region branches when some node in it has two inputs.
    static func isBranching(_ r: Range<Int>, _ graph: OpGraph) -> Bool {
        var inDegree = [Int: Int]()
        for (_, b) in graph.edges where r.contains(b) { inDegree[b, default: 0] += 1 }
        return inDegree.values.contains { $0 > 1 }
    }
}
