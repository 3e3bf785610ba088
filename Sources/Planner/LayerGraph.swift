/// A small DAG of layers for DADS-style partitioning of networks that are not chains (branches, skips).
///
/// Cost of an assignment (a device set D closed under predecessors, the rest on the server) =
/// Σ device ms over D + Σ server ms over the rest + the output transfer of every device node that feeds a server
/// node (a tensor is uploaded once however many server nodes read it) + `inputTransferMs` when a source node
/// (no predecessors) runs on the server. Results flowing back to the device are assumed small and ignored.
public struct LayerGraph: Codable, Sendable, Hashable {
    public struct Node: Codable, Sendable, Hashable {
        public var deviceMs: Double
        public var serverMs: Double
        /// Time to upload this node's output tensor.
        public var outputTransferMs: Double

        public init(deviceMs: Double, serverMs: Double, outputTransferMs: Double) {
            self.deviceMs = deviceMs
            self.serverMs = serverMs
            self.outputTransferMs = outputTransferMs
        }
    }

    public struct Edge: Codable, Sendable, Hashable {
        public var from: Int
        public var to: Int

        public init(from: Int, to: Int) {
            self.from = from
            self.to = to
        }
    }

    public var nodes: [Node]
    public var edges: [Edge]
    public var inputTransferMs: Double

    public init(nodes: [Node], edges: [Edge], inputTransferMs: Double) {
        self.nodes = nodes
        self.edges = edges
        self.inputTransferMs = inputTransferMs
    }

    /// Rejects graphs with bad indices, negative or non-finite costs, or cycles.
    public func validate() throws(PlanningError) {
        for (i, n) in nodes.enumerated() {
            for x in [n.deviceMs, n.serverMs, n.outputTransferMs] where !x.isFinite || x < 0 {
                throw .invalidGraph("nodes[\(i)]: costs must be finite and not negative")
            }
        }
        guard inputTransferMs.isFinite, inputTransferMs >= 0 else {
            throw .invalidGraph("inputTransferMs: must be finite and not negative")
        }
        for (j, e) in edges.enumerated() {
            guard nodes.indices.contains(e.from), nodes.indices.contains(e.to), e.from != e.to else {
                throw .invalidGraph("edges[\(j)]: endpoints must be distinct node indices")
            }
        }
        // Kahn's algorithm over distinct edges (a repeated edge is one dependency).
        let successors = successorLists()
        var indegree = [Int](repeating: 0, count: nodes.count)
        for list in successors { for v in list { indegree[v] += 1 } }
        var ready = nodes.indices.filter { indegree[$0] == 0 }
        var seen = 0
        while let u = ready.popLast() {
            seen += 1
            for v in successors[u] {
                indegree[v] -= 1
                if indegree[v] == 0 { ready.append(v) }
            }
        }
        guard seen == nodes.count else { throw .invalidGraph("edges: the graph has a cycle") }
    }

    func successorLists() -> [[Int]] {
        var s = [[Int]](repeating: [], count: nodes.count)
        for e in edges where !s[e.from].contains(e.to) { s[e.from].append(e.to) }
        return s
    }

    /// Cost of running `onDevice` nodes on the device and the rest on the server; infinity if an edge goes from the
    /// server back to the device.
    public func cost(onDevice: [Bool]) -> Double {
        var total = 0.0
        var hasPredecessor = [Bool](repeating: false, count: nodes.count)
        for e in edges {
            hasPredecessor[e.to] = true
            if !onDevice[e.from] && onDevice[e.to] { return .infinity }
        }
        let successors = successorLists()
        var inputUploaded = false
        for (i, n) in nodes.enumerated() {
            if onDevice[i] {
                total += n.deviceMs
                if successors[i].contains(where: { !onDevice[$0] }) { total += n.outputTransferMs }
            } else {
                total += n.serverMs
                if !hasPredecessor[i] { inputUploaded = true }
            }
        }
        return inputUploaded ? total + inputTransferMs : total
    }
}

/// Which layers run where, and what that costs under the `LayerGraph` cost model.
public struct GraphPartition: Codable, Sendable, Hashable {
    public var deviceNodes: [Int]
    public var serverNodes: [Int]
    public var costMs: Double
}
