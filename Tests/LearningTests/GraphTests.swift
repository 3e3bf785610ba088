import Foundation
import Testing
@testable import Learning

/// Issue 12's op set in the graph engine, each against finite differences; a DAG with a residual Add and a
/// squeeze-and-excitation Mul; the built-in families as graphs, equal to their layers; concurrent inference.
@Suite struct GraphTests {
    /// A one-input graph of `build` as a layer, so `GradCheck` drives it.
    static func layer(_ store: ParameterStore, _ build: (inout Graph) -> Int) -> GraphLayer {
        var g = Graph(inputs: 1)
        g.outputs = [build(&g)]
        return GraphLayer(g, store: store)
    }

    static func conv(_ store: ParameterStore, _ name: String, in c: Int, out o: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                     groups: Int = 1, bias: Bool = true, rng: inout SeededRandom) -> Graph.Op {
        let c2d = Conv2d(store, name: name, in: c, out: o, kernel: kernel, stride: stride, padding: padding, groups: groups, bias: bias, rng: &rng)
        return .conv(c2d.geometry, weight: c2d.weightID, bias: c2d.biasID)
    }

    static func batchNorm(_ store: ParameterStore, _ name: String, channels: Int, rng: inout SeededRandom) -> Graph.Op {
        let bn = BatchNorm2d(store, name: name, channels: channels)
        for i in 0..<channels { store.values[store.entries[bn.gammaID].offset + i] = 0.5 + rng.uniform(0, 1) }
        return .batchNorm(gamma: bn.gammaID, beta: bn.betaID, mean: bn.meanID, variance: bn.varID, eps: bn.eps, momentum: bn.momentum)
    }

    /// (in, out, kernel, stride, padding, groups, bias, H×W): ResNet's 7×7/2 stem, 3×3 and 1×1 at strides 1 and 2,
    /// grouped, depthwise (groups = channels) at both strides, and 1×1 spatial inputs (ResNet's layer4 at 32×32).
    @Test(arguments: [(3, 4, 7, 2, 3, 1, true, 9), (4, 6, 3, 1, 1, 1, true, 5), (4, 6, 1, 2, 0, 1, false, 5), (4, 6, 3, 2, 1, 2, true, 6),
                      (6, 6, 3, 1, 1, 6, true, 5), (6, 6, 3, 2, 1, 6, false, 6), (4, 4, 3, 1, 1, 1, true, 1), (4, 6, 1, 1, 0, 1, true, 1),
                      (4, 4, 3, 2, 1, 4, true, 1)])
    func convolution(cin: Int, cout: Int, k: Int, stride: Int, pad: Int, groups: Int, bias: Bool, size: Int) {
        var rng = SeededRandom(seed: 21)
        let store = ParameterStore()
        let op = Self.conv(store, "c", in: cin, out: cout, kernel: k, stride: stride, padding: pad, groups: groups, bias: bias, rng: &rng)
        let l = Self.layer(store) { $0.add(op, [0]) }
        let e = GradCheck.check(l, store: store, input: GradCheck.randomTensor([2, cin, size, size], &rng))
        #expect(e.input < 1e-3 && e.params < 1e-3, "\(e)")
    }

    @Test(arguments: [Activation.relu, .clip(min: 0, max: 6), .sigmoid, .hardSigmoid(alpha: 1.0 / 6, beta: 0.5), .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish])
    func activation(_ f: Activation) {
        var rng = SeededRandom(seed: 22)
        let l = Self.layer(ParameterStore()) { $0.add(.activation(f), [0]) }
        let e = GradCheck.check(l, store: nil, input: GradCheck.randomTensor([2, 3, 4, 4], &rng, scale: 4), h: 1e-3)
        #expect(e.input < 1e-3, "\(f): \(e)")
    }

    @Test func activationValuesFollowONNX() {
        let x = Tensor(shape: [1, 6], data: [-4, -3, -1, 0, 2.5, 7])
        #expect(Activation.clip(min: 0, max: 6).forward(x).data == [0, 0, 0, 0, 2.5, 6])
        #expect(Activation.hardSigmoid(alpha: 0.2, beta: 0.5).forward(x).data == [0, 0, 0.3, 0.5, 1, 1])
        let hs = Activation.hardSwish.forward(x).data
        let expected: [Float] = [0, 0, -1 * (-1.0 / 6 + 0.5), 0, 2.5 * (2.5 / 6 + 0.5), 7]
        for (a, b) in zip(hs, expected) { #expect(abs(a - b) < 1e-6, "\(hs)") }
        let s = Activation.sigmoid.forward(Tensor(shape: [1], data: [0])).data[0]
        #expect(s == 0.5)
    }

    /// Add and Mul with equal shapes and with the (N, C, 1, 1) broadcast of squeeze-and-excitation, either operand small.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func broadcastBinary(multiply: Bool, smallFirst: Bool) {
        var rng = SeededRandom(seed: 23)
        let op: Graph.Op = multiply ? .mul : .add
        let l = Self.layer(ParameterStore()) { g in
            let s = g.add(.activation(.sigmoid), [g.add(.globalAveragePool, [0])])   // (N, C, 1, 1)
            let t = g.add(.activation(.sigmoid), [0])                                 // (N, C, H, W)
            let b = g.add(op, smallFirst ? [s, t] : [t, s])
            return g.add(op, [b, 0])                                                   // and equal shapes
        }
        let e = GradCheck.check(l, store: nil, input: GradCheck.randomTensor([2, 3, 4, 5], &rng), h: 1e-3)
        #expect(e.input < 1e-3, "\(e)")
    }

    /// MaxPool 3×3/2 pad 1 (ResNet's), average pools with and without counting the padding, on even, odd and 1×1 inputs.
    @Test(arguments: [(Pooling.Kind.max, 3, 2, 1, true, 6), (.max, 3, 2, 1, true, 1), (.max, 2, 2, 0, true, 5), (.average, 3, 2, 1, true, 7),
                      (.average, 3, 2, 1, false, 6), (.average, 2, 2, 0, true, 4), (.average, 3, 1, 1, false, 1)])
    func pooling(kind: Pooling.Kind, k: Int, stride: Int, pad: Int, includePad: Bool, size: Int) {
        var rng = SeededRandom(seed: 24)
        let pooling = Pooling(kind, kernel: k, stride: stride, padding: pad, countIncludePad: includePad)
        let l = Self.layer(ParameterStore()) { $0.add(.pool(pooling), [0]) }
        let x = GradCheck.randomTensor([2, 3, size, size], &rng, scale: 3)
        let e = GradCheck.check(l, store: nil, input: x, h: 1e-3)
        #expect(e.input < 1e-3, "\(e)")
        #expect(l.forward(x, training: false).shape == [2, 3, (size + 2 * pad - k) / stride + 1, (size + 2 * pad - k) / stride + 1])
    }

    @Test func poolingPaddingNeverWinsAndAveragesCountAsDeclared() {
        let x = Tensor(shape: [1, 1, 2, 2], data: [-1, -2, -3, -4])
        let (m, _) = Pooling(.max, kernel: 3, stride: 2, padding: 1).forward(x)
        #expect(m.data == [-1])
        let (a, _) = Pooling(.average, kernel: 3, stride: 2, padding: 1, countIncludePad: false).forward(x)
        #expect(a.data == [-2.5])
        let (b, _) = Pooling(.average, kernel: 3, stride: 2, padding: 1, countIncludePad: true).forward(x)
        #expect(b.data == [-10.0 / 9])
    }

    /// GlobalAveragePool, Flatten and Gemm (transB = 1, with and without bias), with batch norm in both modes.
    @Test(arguments: [true, false])
    func headOps(bias: Bool) {
        var rng = SeededRandom(seed: 25)
        let store = ParameterStore()
        let bn = Self.batchNorm(store, "bn", channels: 3, rng: &rng)
        let lin = Linear(store, name: "fc", in: 3 * 2 * 2, out: 5, rng: &rng)
        let gemm = Graph.Op.gemm(lin.dense, weight: lin.weightID, bias: bias ? lin.biasID : nil)
        let flat = Self.layer(store) { g in g.add(gemm, [g.add(.flatten, [g.add(bn, [0])])]) }
        for training in [true, false] {
            let e = GradCheck.check(flat, store: store, input: GradCheck.randomTensor([4, 3, 2, 2], &rng), h: 1e-2, training: training)
            #expect(e.input < 5e-3, "\(training): \(e)")
            if training { #expect(e.params < 5e-3, "\(e)") }
        }
        let s2 = ParameterStore()
        let fc = Linear(s2, name: "fc", in: 3, out: 4, rng: &rng)
        let gap = Self.layer(s2) { g in g.add(.gemm(fc.dense, weight: fc.weightID, bias: fc.biasID), [g.add(.globalAveragePool, [0])]) }
        let e = GradCheck.check(gap, store: s2, input: GradCheck.randomTensor([2, 3, 3, 3], &rng))
        #expect(e.input < 1e-3 && e.params < 1e-3, "\(e)")
    }

    /// A small DAG: stem conv-BN-Sigmoid, a residual block (3×3 conv-BN-ReLU6, depthwise 3×3, 1×1 conv-BN, + the
    /// block's input), a squeeze-and-excitation branch (pool, 1×1 conv, ReLU, 1×1 conv, HardSigmoid, × features),
    /// HardSwish, max pool, global pool, flatten, Gemm. Gradients of the input and every parameter.
    @Test func dagWithResidualAndSqueezeExcitation() {
        var rng = SeededRandom(seed: 26)
        let store = ParameterStore()
        let ops = (
            stem: Self.conv(store, "stem", in: 2, out: 4, kernel: 3, padding: 1, bias: false, rng: &rng),
            bn0: Self.batchNorm(store, "bn0", channels: 4, rng: &rng),
            c1: Self.conv(store, "c1", in: 4, out: 4, kernel: 3, padding: 1, bias: false, rng: &rng),
            bn1: Self.batchNorm(store, "bn1", channels: 4, rng: &rng),
            dw: Self.conv(store, "dw", in: 4, out: 4, kernel: 3, padding: 1, groups: 4, rng: &rng),
            c2: Self.conv(store, "c2", in: 4, out: 4, kernel: 1, bias: false, rng: &rng),
            bn2: Self.batchNorm(store, "bn2", channels: 4, rng: &rng),
            se1: Self.conv(store, "se1", in: 4, out: 2, kernel: 1, rng: &rng),
            se2: Self.conv(store, "se2", in: 2, out: 4, kernel: 1, rng: &rng))
        let fc = Linear(store, name: "fc", in: 4, out: 3, rng: &rng)
        let net = Self.layer(store) { g in
            let x = g.add(.activation(.sigmoid), [g.add(ops.bn0, [g.add(ops.stem, [0])])])
            var h = g.add(.activation(.clip(min: 0, max: 6)), [g.add(ops.bn1, [g.add(ops.c1, [x])])])
            h = g.add(ops.bn2, [g.add(ops.c2, [g.add(ops.dw, [h])])])
            let r = g.add(.add, [h, x], name: "residual")
            var s = g.add(.activation(.relu), [g.add(ops.se1, [g.add(.globalAveragePool, [r])])])
            s = g.add(.activation(.hardSigmoid(alpha: 1.0 / 6, beta: 0.5)), [g.add(ops.se2, [s])])
            let e = g.add(.activation(.hardSwish), [g.add(.mul, [r, s], name: "excite")])
            let p = g.add(.globalAveragePool, [g.add(.pool(Pooling(.max, kernel: 3, stride: 2, padding: 1)), [e])])
            return g.add(.gemm(fc.dense, weight: fc.weightID, bias: fc.biasID), [g.add(.flatten, [p])])
        }
        let x = GradCheck.randomTensor([3, 2, 6, 6], &rng)
        let e = GradCheck.check(net, store: store, input: x, h: 1e-3)
        #expect(e.input < 1e-2 && e.params < 1e-2, "\(e)")
        if e.params >= 1e-2 {
            // Name the parameters whose gradients disagree.
            for (i, entry) in store.entries.enumerated() where !entry.isBuffer {
                store.setTrainable { $0 == entry.name }
                print("dag gradient \(entry.name): \(GradCheck.check(net, store: store, input: x, h: 1e-3).params) (\(i))")
            }
            store.setTrainable { _ in true }
        }
        // The running statistics moved in training mode and are the store's (parameters stay on the store).
        #expect(store.buffers.contains { $0 != 0 && $0 != 1 })
    }

    static func models() -> [(String, Model)] {
        let r = Model.resnet(widths: [8, 16, 24], blocksPerStage: [1, 2, 2], seed: 3)
        r.attachAdapters(.parallel)
        let m = Model.mobileNetV2(stem: 8, stages: [(8, 1, 1), (12, 2, 2), (16, 2, 2)], expansion: 2, seed: 3)
        m.attachAdapters(.liteResidual)
        // Adapters start at zero; give them values so their path is compared too.
        var rng = SeededRandom(seed: 4)
        for model in [r, m] {
            for e in model.store.entries where e.name.contains(".adapter.") && !e.isBuffer {
                for i in 0..<e.count { model.store.values[e.offset + i] = rng.normal() * 0.1 }
            }
        }
        return [("resnet", r), ("mobilenetv2", m)]
    }

    /// The built-in families as graphs: the whole network and every split suffix equal the layers bit for bit,
    /// and a training step through the graph gives the layers' gradients and running statistics.
    @Test func builtInFamiliesRunAsGraphs() throws {
        var rng = SeededRandom(seed: 27)
        let x = Tensor(shape: [3, 1, 28, 28], data: (0..<(3 * 28 * 28)).map { _ in rng.uniform(-1, 1) })
        for (name, model) in Self.models() {
            let whole = model.forward(x, training: false)
            let g = try model.graph()
            #expect(g.forward([x], store: model.store, training: false, tape: nil)[0].data.map(\.bitPattern) == whole.data.map(\.bitPattern), "\(name)")
            for last in -1..<model.blocks.count {
                let cut = model.forwardPrefix(x, through: last)
                let suffix = InferenceGraph(try model.graph(after: last), store: model.store)
                #expect(suffix.forward([cut])[0].data.map(\.bitPattern) == whole.data.map(\.bitPattern), "\(name) after \(last)")
            }
            // One training pass each way from the same state.
            let labels = [1, 4, 7]
            let buffers = model.store.buffers
            model.store.zeroGrads()
            let tape = Tape()
            model.backward(Losses.crossEntropy(model.forward(x, training: true, tape: tape), labels: labels).grad, tape: tape)
            let (layerGrads, layerBuffers) = (model.store.grads, model.store.buffers)
            model.store.buffers = buffers
            model.store.zeroGrads()
            let graphTape = Tape()
            let logits = g.forward([x], store: model.store, training: true, tape: graphTape)[0]
            _ = g.backward([Losses.crossEntropy(logits, labels: labels).grad], store: model.store, tape: graphTape)
            #expect(GradCheck.relErr(model.store.grads.map(Double.init), layerGrads.map(Double.init)) < 1e-5, "\(name)")
            #expect(GradCheck.relErr(model.store.buffers.map(Double.init), layerBuffers.map(Double.init)) < 1e-6, "\(name)")
            #expect(graphTape.frames.isEmpty && graphTape.savedFloats == 0)
        }
    }

    /// One network serves concurrent inferences without a lock: eight tasks, each on its own inputs, get exactly
    /// the serial answers.
    @Test func concurrentInferencesEqualTheSerialAnswers() async throws {
        let (_, model) = Self.models()[1]
        let network = InferenceGraph(try model.graph(), store: model.store)
        var rng = SeededRandom(seed: 28)
        let inputs = (0..<8).map { _ in Tensor(shape: [2, 1, 28, 28], data: (0..<(2 * 28 * 28)).map { _ in rng.uniform(-1, 1) }) }
        let serial = inputs.map { model.forward($0, training: false).data.map(\.bitPattern) }
        let concurrent = await withTaskGroup(of: (Int, [UInt32]).self) { group in
            for (i, x) in inputs.enumerated() {
                group.addTask {
                    var last: [UInt32] = []
                    for _ in 0..<5 { last = network.forward([x])[0].data.map(\.bitPattern) }
                    return (i, last)
                }
            }
            var out = [[UInt32]](repeating: [], count: inputs.count)
            for await (i, y) in group { out[i] = y }
            return out
        }
        #expect(concurrent == serial)
    }

    /// A tape carries per-call state only: two passes on two tapes interleave, and each backward gets its own gradient.
    @Test func interleavedPassesOnTwoTapesKeepExactGradients() {
        var rng = SeededRandom(seed: 29)
        let store = ParameterStore()
        let block = Block.basic(store, name: "b", in: 3, out: 4, stride: 2, inputSize: (6, 6), rng: &rng)
        let (x1, x2) = (GradCheck.randomTensor([2, 3, 6, 6], &rng), GradCheck.randomTensor([2, 3, 6, 6], &rng))
        let dy = GradCheck.randomTensor([2, 4, 3, 3], &rng)
        func alone(_ x: Tensor) -> ([Float], [Float]) {
            store.zeroGrads()
            let t = Tape()
            _ = block.forward(x, training: false, tape: t)
            return (block.backward(dy, tape: t).data, store.grads)
        }
        let (d1, g1) = alone(x1), (d2, g2) = alone(x2)
        store.zeroGrads()
        let (t1, t2) = (Tape(), Tape())
        _ = block.forward(x1, training: false, tape: t1)
        _ = block.forward(x2, training: false, tape: t2)
        #expect(block.backward(dy, tape: t1).data == d1)
        let afterFirst = store.grads
        #expect(block.backward(dy, tape: t2).data == d2)
        #expect(afterFirst == g1)
        #expect(GradCheck.relErr(zip(store.grads, g1).map { Double($0 - $1) }, g2.map(Double.init)) < 1e-6)
    }
}
