import Foundation
import Testing
@testable import Learning

/// The engine's fast paths against its plain ones: folded conv → BN → ReLU inference, lanes over threads,
/// chunked GEMMs, and the backward that skips what nothing trains.
@Suite struct EngineKernelTests {
    /// A ResNet whose batch norms hold non-trivial running statistics and affine weights (fresh ones fold to ≈ identity).
    static func perturbedResNet(seed: UInt64 = 0) -> Model {
        let model = Model.resnet(seed: seed)
        var rng = SeededRandom(seed: seed + 11)
        for e in model.store.entries {
            let values = (0..<e.count).map { _ -> Float in
                if e.name.hasSuffix("running_var") { return rng.uniform(0.3, 2) }
                if e.name.hasSuffix("running_mean") { return rng.uniform(-0.5, 0.5) }
                if e.name.contains("bn") || e.name.hasPrefix("stem.1") || e.name.contains("shortcut.1") {
                    return e.name.hasSuffix(".weight") ? rng.uniform(0.5, 1.5) : rng.uniform(-0.3, 0.3)
                }
                return model.store.values[e.offset]   // keep conv and linear weights
            }
            if e.isBuffer || e.name.contains("bn") || e.name.hasPrefix("stem.1") || e.name.contains("shortcut.1") {
                try! model.store.set(e.name, values)
            }
        }
        return model
    }

    static func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    @Test(arguments: [1, 2, 5])
    func foldedInferenceEqualsUnfused(batch: Int) {
        let model = Self.perturbedResNet()
        var rng = SeededRandom(seed: 4)
        let x = GradCheck.randomTensor([batch, 1, 28, 28], &rng)
        let folded = model.forward(x, training: false)
        // A tape that saves makes every layer run on its own (nothing folds).
        let plain = model.forward(x, training: false, tape: Tape(saving: true))
        #expect(Self.maxDiff(folded.data, plain.data) < 1e-5, "folded vs unfused logits")
    }

    @Test func foldedMobileNetWithReLU6EqualsUnfused() {
        let model = Model.mobileNetV2()
        for bn in model.allNorms {
            try! model.store.set(bn.name + ".running_var", (0..<bn.channels).map { Float($0 % 5) * 0.2 + 0.5 })
            try! model.store.set(bn.name + ".running_mean", (0..<bn.channels).map { Float($0 % 3) * 0.1 - 0.1 })
        }
        var rng = SeededRandom(seed: 5)
        let x = GradCheck.randomTensor([3, 1, 28, 28], &rng)
        let folded = model.forward(x, training: false)
        let plain = model.forward(x, training: false, tape: Tape(saving: true))
        #expect(Self.maxDiff(folded.data, plain.data) < 1e-5)
    }

    @Test func reestimatingStatisticsDoesNotFold() {
        // A cumulative bn-stats pass normalises with each batch's statistics, in evaluation mode too.
        let a = Self.perturbedResNet(), b = Self.perturbedResNet()
        var rng = SeededRandom(seed: 6)
        let x = GradCheck.randomTensor([4, 1, 28, 28], &rng)
        for bn in a.allNorms { bn.cumulativeBatches = 0 }
        for bn in b.allNorms { bn.cumulativeBatches = 0 }
        let y1 = a.forward(x, training: false)
        let y2 = b.forward(x, training: false, tape: Tape(saving: true))
        #expect(y1.data == y2.data)
        #expect(a.store.buffers == b.store.buffers)
    }

    @Test(arguments: [(64, 2), (5, 2), (7, 3), (1, 2)])
    func threadedEqualsSingleThreaded(batch: Int, threads: Int) {
        var rng = SeededRandom(seed: 7)
        let x = GradCheck.randomTensor([batch, 1, 28, 28], &rng)
        let labels = (0..<batch).map { $0 % 10 }
        var grads: [[Float]] = [], logits: [[Float]] = [], buffers: [[Float]] = [], inference: [[Float]] = []
        for n in [1, threads] {
            let model = Self.perturbedResNet()
            let tape = Tape(threads: n)
            model.store.zeroGrads()
            let out = model.forward(x, training: true, tape: tape)
            model.backward(Losses.crossEntropy(out, labels: labels).grad, tape: tape)
            grads.append(model.store.grads)
            logits.append(out.data)
            buffers.append(model.store.buffers)
            model.threads = n
            inference.append(model.forward(x, training: false).data)
        }
        // Lanes split samples and channels; chunk boundaries (GEMM widths) may move, so allow float rounding.
        #expect(Self.maxDiff(logits[0], logits[1]) < 1e-5)
        #expect(Self.maxDiff(buffers[0], buffers[1]) < 1e-5)
        #expect(Self.maxDiff(inference[0], inference[1]) < 1e-5)
        // Weight gradients sum lanes' partial sums in another order.
        let scale = grads[0].reduce(0) { max($0, abs($1)) }
        #expect(Self.maxDiff(grads[0], grads[1]) <= 1e-5 * max(scale, 1))
    }

    @Test(arguments: [(1, 1, 3), (2, 1, 3), (1, 0, 1)])
    func threadedConvGradientsMatchFiniteDifferences(stride: Int, padding: Int, k: Int) {
        // Odd batch over 2 lanes, small planes so samples are chunked with a ragged tail.
        var rng = SeededRandom(seed: 9)
        let store = ParameterStore()
        let conv = Conv2d(store, name: "c", in: 3, out: 4, kernel: k, stride: stride, padding: padding, bias: true, rng: &rng)
        let e = GradCheck.check(conv, store: store, input: GradCheck.randomTensor([5, 3, 5, 4], &rng), threads: 2)
        #expect(e.input < 1e-3 && e.params < 1e-3, "\(e)")
    }

    @Test func threadedBatchNormGradientsMatchFiniteDifferences() {
        var rng = SeededRandom(seed: 10)
        let store = ParameterStore()
        let bn = BatchNorm2d(store, name: "bn", channels: 5)
        let e = GradCheck.check(bn, store: store, input: GradCheck.randomTensor([3, 5, 3, 3], &rng), threads: 2)
        #expect(e.input < 1e-3 && e.params < 1e-3, "\(e)")
    }

    @Test func chunkedConvMatchesOneSampleAtATime() {
        // 7×7 planes: chunks of 10 samples per GEMM; against the same convolution applied to each sample alone.
        var rng = SeededRandom(seed: 12)
        let store = ParameterStore()
        let conv = Conv2d(store, name: "c", in: 8, out: 6, kernel: 3, padding: 1, rng: &rng)
        let x = GradCheck.randomTensor([13, 8, 7, 7], &rng)
        let dy = GradCheck.randomTensor([13, 6, 7, 7], &rng)
        let tape = Tape()
        let y = conv.forward(x, training: true, tape: tape)
        let dx = conv.backward(dy, tape: tape)
        let dW = store.grads
        var ySingle: [Float] = [], dxSingle: [Float] = [], dWSingle = [Float](repeating: 0, count: dW.count)
        for i in 0..<13 {
            store.zeroGrads()
            let t = Tape()
            ySingle += conv.forward(x.batch(i..<(i + 1)), training: true, tape: t).data
            dxSingle += conv.backward(dy.batch(i..<(i + 1)), tape: t).data
            for (j, g) in store.grads.enumerated() { dWSingle[j] += g }
        }
        #expect(Self.maxDiff(y.data, ySingle) < 1e-5)
        #expect(Self.maxDiff(dx.data, dxSingle) < 1e-5)
        #expect(Self.maxDiff(dW, dWSingle) < 1e-4)
    }

    @Test func adapterOnlyBackwardSkipsFrozenPathsWithSameGradients() {
        // Model.backward stops at the first trainable block and back-propagates only its adapter; the reference
        // runs every block's full backward on the same tape.
        var rng = SeededRandom(seed: 13)
        let x = GradCheck.randomTensor([4, 1, 28, 28], &rng)
        var results: [[Float]] = []
        for skip in [true, false] {
            let model = Self.perturbedResNet()
            model.attachAdapters(.parallel)
            // Non-zero adapters so that every gradient path carries signal.
            for b in model.blocks { let n = b.name + ".adapter.conv.weight"; try! model.store.set(n, model.store.tensor(n)!.data.indices.map { Float($0 % 7) * 0.01 - 0.03 }) }
            model.setTrainable(.adaptersOnBatchStatistics)
            model.store.zeroGrads()
            let tape = Tape()
            let d = Losses.entropy(model.forward(x, training: true, tape: tape)).grad
            if skip {
                model.backward(d, tape: tape)
            } else {
                var g = model.pool.backward(model.head.backward(d, tape: tape), tape: tape)
                for b in model.blocks.reversed() { g = b.backward(g, tape: tape) }
            }
            results.append(model.store.grads)
        }
        #expect(results[0].contains { $0 != 0 })
        #expect(Self.maxDiff(results[0], results[1]) < 1e-6)
    }

    @Test func stemSkipsItsInputGradientOnly() {
        let model = Self.perturbedResNet()
        let stemConv = model.stem.layers[0] as! Conv2d
        #expect(!stemConv.computesInputGradient)
        // Its weight gradient is unchanged: against a twin whose stem computes dx.
        var rng = SeededRandom(seed: 14)
        let x = GradCheck.randomTensor([3, 1, 28, 28], &rng)
        var grads: [[Float]] = []
        for computes in [false, true] {
            let m = Self.perturbedResNet()
            (m.stem.layers[0] as! Conv2d).computesInputGradient = computes
            m.store.zeroGrads()
            let tape = Tape()
            m.backward(Losses.crossEntropy(m.forward(x, training: true, tape: tape), labels: [1, 2, 3]).grad, tape: tape)
            grads.append(m.store.grads)
        }
        #expect(grads[0] == grads[1])
    }
}
