import ElasticModel
import Learning
import Testing

struct BlockDetectionTests {
    @Test func resnetBlocksAreItsResidualBlocks() {
        let model = Model.resnet(widths: [8, 16, 32], blocksPerStage: [1, 2, 2])
        let result = BlockDetection.detect(OpGraph(model: model))
        #expect(result.blocks.map(\.modules) == (0..<5).map { ["blocks.\($0)"] })
        #expect(result.blocks.allSatisfy { $0.hasBranch })
        #expect(result.blocks[1].compressibleLayers == ["blocks.1.conv1", "blocks.1.conv2", "blocks.1.shortcut.0"])
        #expect(result.blocks[1].inputShape == [8, 28, 28] && result.blocks[1].outputShape == [16, 14, 14])
        #expect(result.stem?.modules == ["stem"] && result.head?.modules == ["head"])
    }

    @Test func mobileNetBlocksIncludePlainChains() {
        let model = Model.mobileNetV2()
        let result = BlockDetection.detect(OpGraph(model: model))
        #expect(result.blocks.map { $0.modules[0] } == (0..<5).map { "blocks.\($0)" })
        // Stage starts (stride 2 or new width) are plain chains of three convolutions; the others are residual.
        #expect(result.blocks.map(\.hasBranch) == [true, false, true, false, true])
        #expect(result.blocks.allSatisfy { $0.compressibleLayers.count == 3 })
        #expect(result.blocks[1].outputShape == [24, 14, 14])
    }

    /// A skip connection that spans two modules makes them one block: no block may be cut inside a branch.
    @Test func skipAcrossModulesMergesThem() {
        var g = OpGraph()
        let input = g.add("input", module: "input", op: .input, shape: [4, 8, 8], inputs: [])
        let stem = g.add("stem.conv", module: "stem", op: .conv, shape: [4, 8, 8], inputs: [input])
        let a1 = g.add("a.conv", module: "a", op: .conv, shape: [4, 8, 8], inputs: [stem])
        let a2 = g.add("a.relu", module: "a", op: .activation, shape: [4, 8, 8], inputs: [a1])
        let b1 = g.add("b.conv", module: "b", op: .conv, shape: [4, 8, 8], inputs: [a2])
        let add = g.add("b.add", module: "b", op: .add, shape: [4, 8, 8], inputs: [b1, stem])
        let c1 = g.add("c.conv", module: "c", op: .conv, shape: [4, 8, 8], inputs: [add])
        let pool = g.add("pool", module: "head", op: .pool, shape: [4], inputs: [c1])
        let fc = g.add("fc", module: "head", op: .linear, shape: [10], inputs: [pool])
        g.add("output", module: "output", op: .output, shape: [10], inputs: [fc])
        let result = BlockDetection.detect(g)
        #expect(result.blocks.map(\.modules) == [["a", "b"], ["c"]])
        #expect(result.blocks[0].hasBranch && !result.blocks[1].hasBranch)
    }

    /// Cut nodes by the edge sweep equal cut nodes by brute force (remove the node, search for a path) on random DAGs.
    @Test func cutNodesMatchBruteForce() {
        var rng = SeededRandom(seed: 5)
        for trial in 0..<200 {
            var g = OpGraph()
            let n = 3 + Int(rng.next() % 12)
            g.add("n0", module: "m", op: .input, shape: [1], inputs: [])
            for i in 1..<n {
                // Always an edge from the previous node (so every node reaches the sink), plus random earlier ones.
                var inputs = [i - 1]
                for j in 0..<(i - 1) where rng.next() % 4 == 0 { inputs.append(j) }
                g.add("n\(i)", module: "m", op: .conv, shape: [1], inputs: inputs)
            }
            func reachable(avoiding v: Int) -> Bool {
                var seen = Set([0]), stack = [0]
                while let x = stack.popLast() {
                    for (a, b) in g.edges where a == x && b != v && !seen.contains(b) { seen.insert(b); stack.append(b) }
                }
                return seen.contains(n - 1)
            }
            let brute = (0..<n).filter { $0 == 0 || $0 == n - 1 || !reachable(avoiding: $0) }
            #expect(g.cutNodes == brute, "trial \(trial)")
        }
    }
}
