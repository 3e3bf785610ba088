import Testing
@testable import Learning

/// The shape ops of issue 12's list that torchvision exports may hold (ReduceMean over H, W; a static Reshape;
/// inference Dropout; Identity), each against finite differences between parameterised ops, as GraphTests does.
@Suite struct GraphShapeOpsTests {
    /// conv → op → (if rank 2 after the op, gemm; else conv again) so both the input and parameter gradients go
    /// through the op under test.
    static func sandwich(_ op: Graph.Op, channels: Int, flatOut: Int?, rng: inout SeededRandom) -> (GraphLayer, ParameterStore) {
        let store = ParameterStore()
        let c1 = GraphTests.conv(store, "c1", in: 2, out: channels, kernel: 3, padding: 1, rng: &rng)
        var g = Graph(inputs: 1)
        var h = g.add(c1, [0])
        h = g.add(op, [h], name: "under-test")
        if let flatOut {
            let fc = Linear(store, name: "fc", in: flatOut, out: 3, rng: &rng)
            h = g.add(.gemm(fc.dense, weight: fc.weightID, bias: fc.biasID), [h])
        } else {
            h = g.add(GraphTests.conv(store, "c2", in: channels, out: 3, kernel: 1, rng: &rng), [h])
        }
        g.outputs = [h]
        return (GraphLayer(g, store: store), store)
    }

    @Test(arguments: [true, false])
    func reduceMeanOverHeightAndWidth(keepDims: Bool) {
        var rng = SeededRandom(seed: 31)
        let (l, store) = Self.sandwich(.reduceMean(keepDims: keepDims), channels: 4, flatOut: keepDims ? nil : 4, rng: &rng)
        let x = GradCheck.randomTensor([2, 2, 5, 4], &rng)
        let e = GradCheck.check(l, store: store, input: x, h: 1e-2)
        #expect(e.input < 1e-3 && e.params < 1e-3, "\(e)")
        #expect(l.forward(x, training: false).shape == (keepDims ? [2, 3, 1, 1] : [2, 3]))
        // The values are the plane means.
        let one = Tensor(shape: [1, 2, 2, 2], data: [1, 2, 3, 6, -1, -1, -1, -5])
        var g = Graph(inputs: 1)
        g.outputs = [g.add(.reduceMean(keepDims: keepDims), [0])]
        let y = g.forward([one], store: ParameterStore(), training: false, tape: nil)[0]
        #expect(y.data == [3, -2] && y.shape == (keepDims ? [1, 2, 1, 1] : [1, 2]))
    }

    /// (N, 4, 3, 3) -> (N, 36) as a flatten, and -> (N, 2, 6, 3) as a reshape that stays spatial.
    @Test(arguments: [[36], [2, 6, 3]])
    func staticReshape(perSample: [Int]) {
        var rng = SeededRandom(seed: 32)
        let flat = perSample.count == 1 ? perSample[0] : nil
        let store = ParameterStore()
        let c1 = GraphTests.conv(store, "c1", in: 2, out: 4, kernel: 3, padding: 1, rng: &rng)
        var g = Graph(inputs: 1)
        var h = g.add(.reshape(perSample: perSample), [g.add(c1, [0])])
        if let flat {
            let fc = Linear(store, name: "fc", in: flat, out: 3, rng: &rng)
            h = g.add(.gemm(fc.dense, weight: fc.weightID, bias: fc.biasID), [h])
        } else {
            h = g.add(GraphTests.conv(store, "c2", in: 2, out: 3, kernel: 3, padding: 1, rng: &rng), [h])
        }
        g.outputs = [h]
        let l = GraphLayer(g, store: store)
        let x = GradCheck.randomTensor([2, 2, 3, 3], &rng)
        let e = GradCheck.check(l, store: store, input: x, h: 1e-2)
        #expect(e.input < 1e-3 && e.params < 1e-3, "\(e)")
        var r = Graph(inputs: 1)
        r.outputs = [r.add(.reshape(perSample: perSample), [0])]
        let x4 = GradCheck.randomTensor([2, 4, 3, 3], &rng)
        let y = r.forward([x4], store: ParameterStore(), training: false, tape: nil)[0]
        #expect(y.shape == [2] + perSample && y.data == x4.data)
    }

    /// Dropout (inference) and Identity pass values through unchanged in both modes and their gradient is dy.
    @Test(arguments: [Graph.Op.dropout, .identity])
    func identityLike(_ op: Graph.Op) {
        var rng = SeededRandom(seed: 33)
        let (l, store) = Self.sandwich(op, channels: 3, flatOut: nil, rng: &rng)
        let x = GradCheck.randomTensor([2, 2, 4, 4], &rng)
        for training in [false, true] {
            let e = GradCheck.check(l, store: store, input: x, h: 1e-2, training: training)
            #expect(e.input < 1e-3 && e.params < 1e-3, "\(op) training \(training): \(e)")
        }
        var g = Graph(inputs: 1)
        g.outputs = [g.add(op, [0])]
        for training in [false, true] {
            let tape = Tape()
            #expect(g.forward([x], store: ParameterStore(), training: training, tape: tape)[0] == x)
            let dy = GradCheck.randomTensor(x.shape, &rng)
            #expect(g.backward([dy], store: ParameterStore(), tape: tape)[0] == dy)
        }
    }
}
