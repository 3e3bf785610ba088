import Testing
@testable import Planner

@Suite struct MinCutPartitionTests {
    static func randomDAG(_ rng: inout SeededRNG) -> LayerGraph {
        let n = rng.int(1, 9)
        let nodes = (0..<n).map { _ in
            LayerGraph.Node(deviceMs: rng.value(0, 10, grid: 1), serverMs: rng.value(0, 3, grid: 0.5),
                            outputTransferMs: rng.value(0, 8, grid: 1))
        }
        var edges: [LayerGraph.Edge] = []
        for v in 1..<max(n, 1) {
            // Every node after the first reads one earlier node, sometimes two (skip connections, branches).
            edges.append(LayerGraph.Edge(from: rng.int(0, v - 1), to: v))
            if rng.chance(0.4) { edges.append(LayerGraph.Edge(from: rng.int(0, v - 1), to: v)) }
        }
        return LayerGraph(nodes: nodes, edges: edges, inputTransferMs: rng.uniform(0, 6))
    }

    /// Minimum over every device set closed under predecessors.
    static func bruteForce(_ g: LayerGraph) -> Double {
        var best = Double.infinity
        for mask in 0..<(1 << g.nodes.count) {
            let onDevice = (0..<g.nodes.count).map { mask & (1 << $0) != 0 }
            best = min(best, g.cost(onDevice: onDevice))
        }
        return best
    }

    @Test func minCutEqualsBruteForceOnRandomDAGs() throws {
        var rng = SeededRNG(seed: 8)
        var mixed = 0
        for _ in 0..<400 {
            let g = Self.randomDAG(&rng)
            let cut = try Planner.minCutPartition(graph: g)
            #expect(Fixtures.close(cut.costMs, Self.bruteForce(g)), "graph \(g)")
            // The returned sets are a valid partition: no server node feeds a device node.
            let onDevice = (0..<g.nodes.count).map { cut.deviceNodes.contains($0) }
            #expect(g.cost(onDevice: onDevice) == cut.costMs)
            #expect(cut.deviceNodes.count + cut.serverNodes.count == g.nodes.count)
            if !cut.deviceNodes.isEmpty && !cut.serverNodes.isEmpty { mixed += 1 }
        }
        #expect(mixed > 30)
    }

    @Test func branchOutputIsUploadedOnce() throws {
        // 0 feeds both 1 and 2 on the server: its tensor is paid once (5), not twice.
        let g = LayerGraph(nodes: [LayerGraph.Node(deviceMs: 1, serverMs: 9, outputTransferMs: 5),
                                   LayerGraph.Node(deviceMs: 20, serverMs: 1, outputTransferMs: 0),
                                   LayerGraph.Node(deviceMs: 20, serverMs: 1, outputTransferMs: 0)],
                           edges: [LayerGraph.Edge(from: 0, to: 1), LayerGraph.Edge(from: 0, to: 2)],
                           inputTransferMs: 100)
        let cut = try Planner.minCutPartition(graph: g)
        #expect(cut.deviceNodes == [0] && cut.serverNodes == [1, 2])
        #expect(cut.costMs == 1 + 5 + 1 + 1)
    }

    @Test func cyclesAndBadIndicesAreRejected() {
        let node = LayerGraph.Node(deviceMs: 1, serverMs: 1, outputTransferMs: 1)
        #expect(throws: PlanningError.invalidGraph("edges: the graph has a cycle")) {
            try Planner.minCutPartition(graph: LayerGraph(nodes: [node, node], edges: [
                LayerGraph.Edge(from: 0, to: 1), LayerGraph.Edge(from: 1, to: 0)], inputTransferMs: 0))
        }
        #expect(throws: PlanningError.self) {
            try Planner.minCutPartition(graph: LayerGraph(nodes: [node], edges: [LayerGraph.Edge(from: 0, to: 3)],
                                                          inputTransferMs: 0))
        }
    }
}
