/// DADS-style optimal partition of a layer DAG by a minimum s–t cut (Edmonds–Karp max flow).
///
/// Network: source = device, sink = server. Node i: source→i with its server cost (cut when i runs on the server),
/// i→sink with its device cost. Edge u→v: v→u with infinite capacity, so a server node never feeds a device node.
/// Upload of u's output: u→aux(u) with the transfer cost and aux(u)→v infinite for each successor v, so the tensor
/// is paid once when any reader is on the server. Raw input: source→aux(in) with the input transfer,
/// aux(in)→every source node infinite.
extension Planner {
    public static func minCutPartition(graph: LayerGraph) throws(PlanningError) -> GraphPartition {
        try graph.validate()
        let n = graph.nodes.count
        guard n > 0 else { return GraphPartition(deviceNodes: [], serverNodes: [], costMs: 0) }
        let successors = graph.successorLists()
        var hasPredecessor = [Bool](repeating: false, count: n)
        for e in graph.edges { hasPredecessor[e.to] = true }
        let source = n, sink = n + 1, inputAux = n + 2
        var flow = FlowNetwork(vertexCount: 2 * n + 3)
        for (i, node) in graph.nodes.enumerated() {
            flow.addEdge(source, i, node.serverMs)
            flow.addEdge(i, sink, node.deviceMs)
            if !successors[i].isEmpty {
                let aux = n + 3 + i
                flow.addEdge(i, aux, node.outputTransferMs)
                for v in successors[i] {
                    flow.addEdge(aux, v, .infinity)
                    flow.addEdge(v, i, .infinity)
                }
            }
            if !hasPredecessor[i] { flow.addEdge(inputAux, i, .infinity) }
        }
        flow.addEdge(source, inputAux, graph.inputTransferMs)
        _ = flow.maxFlow(source, sink)
        let deviceSide = flow.reachableFromSource(source)
        let onDevice = (0..<n).map { deviceSide[$0] }
        return GraphPartition(deviceNodes: (0..<n).filter { onDevice[$0] }, serverNodes: (0..<n).filter { !onDevice[$0] },
                              costMs: graph.cost(onDevice: onDevice))
    }
}

/// Residual network with `Double` capacities; infinite capacities stay infinite under subtraction.
struct FlowNetwork {
    private struct Arc {
        var to: Int
        var capacity: Double
        var reverse: Int
    }

    private var adjacency: [[Arc]]
    /// Residual capacities below this count as saturated (flows are sums of finite costs in ms).
    private let epsilon = 1e-12

    init(vertexCount: Int) { adjacency = Array(repeating: [], count: vertexCount) }

    mutating func addEdge(_ u: Int, _ v: Int, _ capacity: Double) {
        adjacency[u].append(Arc(to: v, capacity: capacity, reverse: adjacency[v].count))
        adjacency[v].append(Arc(to: u, capacity: 0, reverse: adjacency[u].count - 1))
    }

    /// Edmonds–Karp: augment along shortest residual paths until none is left.
    mutating func maxFlow(_ s: Int, _ t: Int) -> Double {
        var total = 0.0
        let count = adjacency.count
        while true {
            var parent = [(vertex: Int, arc: Int)](repeating: (-1, -1), count: count)
            parent[s] = (s, -1)
            var queue = [s], head = 0
            while head < queue.count && parent[t].vertex == -1 {
                let u = queue[head]
                head += 1
                for (a, arc) in adjacency[u].enumerated() where arc.capacity > epsilon && parent[arc.to].vertex == -1 {
                    parent[arc.to] = (u, a)
                    queue.append(arc.to)
                }
            }
            if parent[t].vertex == -1 { return total }
            var bottleneck = Double.infinity
            var v = t
            while v != s {
                let (u, a) = parent[v]
                bottleneck = min(bottleneck, adjacency[u][a].capacity)
                v = u
            }
            if !bottleneck.isFinite { return .infinity }
            v = t
            while v != s {
                let (u, a) = parent[v]
                adjacency[u][a].capacity -= bottleneck
                let r = adjacency[u][a].reverse
                adjacency[v][r].capacity += bottleneck
                v = u
            }
            total += bottleneck
        }
    }

    func reachableFromSource(_ s: Int) -> [Bool] {
        var seen = [Bool](repeating: false, count: adjacency.count)
        seen[s] = true
        var stack = [s]
        while let u = stack.popLast() {
            for arc in adjacency[u] where arc.capacity > epsilon && !seen[arc.to] {
                seen[arc.to] = true
                stack.append(arc.to)
            }
        }
        return seen
    }
}
