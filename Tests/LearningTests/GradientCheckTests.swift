import Foundation
import Testing
@testable import Learning

/// Central finite differences against every backward, on small random tensors (loss = Σ y·r for a fixed r).
struct GradCheck {
    static func randomTensor(_ shape: [Int], _ rng: inout SeededRandom, scale: Float = 1) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.normal() * scale })
    }

    /// Relative error ‖a − n‖ / (‖a‖ + ‖n‖) between analytic and numeric gradients of input and parameters.
    static func check(_ layer: Layer, store: ParameterStore?, input: Tensor, h: Float = 1e-2, seed: UInt64 = 1,
                      training: Bool = true, threads: Int = 1) -> (input: Double, params: Double) {
        var rng = SeededRandom(seed: seed)
        let y0 = layer.forward(input, training: training)
        let r = randomTensor(y0.shape, &rng)
        func loss(_ x: Tensor) -> Double {
            let y = layer.forward(x, training: training)
            return zip(y.data, r.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        store?.zeroGrads()
        let tape = Tape(threads: threads)
        _ = layer.forward(input, training: training, tape: tape)
        let dx = layer.backward(r, tape: tape)
        var x = input
        var num = [Double](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let v = x.data[i]
            x.data[i] = v + h; let a = loss(x)
            x.data[i] = v - h; let b = loss(x)
            x.data[i] = v
            num[i] = (a - b) / Double(2 * h)
        }
        let inputErr = relErr(dx.data.map(Double.init), num)
        var paramErr = 0.0
        if let store {
            let analytic = store.grads.map(Double.init)
            var numeric = [Double](repeating: 0, count: store.values.count)
            for i in 0..<store.values.count where store.trainable[store.entries.firstIndex { !$0.isBuffer && i >= $0.offset && i < $0.offset + $0.count }!] {
                let v = store.values[i]
                store.values[i] = v + h; let a = loss(input)
                store.values[i] = v - h; let b = loss(input)
                store.values[i] = v
                numeric[i] = (a - b) / Double(2 * h)
            }
            paramErr = relErr(analytic, numeric)
        }
        return (inputErr, paramErr)
    }

    static func relErr(_ a: [Double], _ b: [Double]) -> Double {
        var d = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { d += (x - y) * (x - y); na += x * x; nb += y * y }
        return d.squareRoot() / max(na.squareRoot() + nb.squareRoot(), 1e-12)
    }
}

@Suite struct GradientCheckTests {
    @Test(arguments: [(1, 0, 1), (2, 1, 1), (1, 1, 2), (2, 1, 4)])
    func conv2d(stride: Int, padding: Int, groups: Int) {
        var rng = SeededRandom(seed: 3)
        let store = ParameterStore()
        let conv = Conv2d(store, name: "c", in: 4, out: 4, kernel: 3, stride: stride, padding: padding, groups: groups, bias: true, rng: &rng)
        let e = GradCheck.check(conv, store: store, input: GradCheck.randomTensor([2, 4, 6, 5], &rng))
        #expect(e.input < 1e-3 && e.params < 1e-3, "\(e)")
    }

    /// Every convolution path against naive loops: grouped (batched im2col), ungrouped (per sample, 3×3 and 1×1),
    /// and depthwise (direct), with strides and paddings.
    @Test(arguments: [(4, 6, 3, 2, 1, 2), (4, 6, 3, 1, 1, 1), (4, 6, 1, 1, 0, 1), (4, 4, 3, 1, 1, 4), (4, 4, 3, 2, 1, 4), (6, 6, 5, 2, 2, 6)])
    func convMatchesDirectLoops(cin: Int, cout: Int, k: Int, stride: Int, pad: Int, groups: Int) {
        var rng = SeededRandom(seed: 8)
        let store = ParameterStore()
        let conv = Conv2d(store, name: "c", in: cin, out: cout, kernel: k, stride: stride, padding: pad, groups: groups, bias: true, rng: &rng)
        let x = GradCheck.randomTensor([2, cin, 7, 6], &rng)
        let y = conv.forward(x, training: false)
        let w = store.tensor("c.weight")!.data, b = store.tensor("c.bias")!.data
        let (ho, wo) = conv.outputSize(7, 6)
        let cg = cin / groups, og = cout / groups
        var maxDiff: Float = 0
        for n in 0..<2 { for o in 0..<cout { for oy in 0..<ho { for ox in 0..<wo {
            let g = o / og
            var s = b[o]
            for ci in 0..<cg { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * stride - pad + ky, ix = ox * stride - pad + kx
                guard iy >= 0, iy < 7, ix >= 0, ix < 6 else { continue }
                s += w[((o * cg + ci) * k + ky) * k + kx] * x.data[((n * cin + g * cg + ci) * 7 + iy) * 6 + ix]
            } } }
            maxDiff = max(maxDiff, abs(s - y.data[((n * cout + o) * ho + oy) * wo + ox]))
        } } } }
        #expect(maxDiff < 1e-5)
    }

    @Test func linear() {
        var rng = SeededRandom(seed: 4)
        let store = ParameterStore()
        let e = GradCheck.check(Linear(store, name: "l", in: 7, out: 5, rng: &rng), store: store, input: GradCheck.randomTensor([3, 7], &rng))
        #expect(e.input < 1e-3 && e.params < 1e-3, "\(e)")
    }

    @Test func batchNormTrainAndEval() {
        var rng = SeededRandom(seed: 5)
        let store = ParameterStore()
        let bn = BatchNorm2d(store, name: "bn", channels: 3)
        for i in 0..<3 { store.values[store.entries[bn.gammaID].offset + i] = 0.5 + Float(i) }
        let x = GradCheck.randomTensor([4, 3, 3, 3], &rng, scale: 2)
        let train = GradCheck.check(bn, store: store, input: x, h: 1e-2)
        #expect(train.input < 5e-3 && train.params < 5e-3, "\(train)")
        // Evaluation mode saves nothing for the parameters (like a convolution): only the input gradient flows.
        let eval = GradCheck.check(bn, store: nil, input: x, training: false)
        #expect(eval.input < 1e-3, "\(eval)")
    }

    @Test func activationsAndPooling() {
        var rng = SeededRandom(seed: 6)
        let x = GradCheck.randomTensor([2, 3, 6, 6], &rng, scale: 3)
        for layer: Layer in [ReLU(), ReLU.relu6(), Pool2d(.max, kernel: 2), Pool2d(.average, kernel: 3, stride: 2), GlobalAvgPool(),
                             Upsample(height: 9, width: 4), Flatten()] {
            let e = GradCheck.check(layer, store: nil, input: x, h: 1e-3)
            #expect(e.input < 1e-3, "\(type(of: layer)): \(e)")
        }
    }

    @Test(arguments: ["ce", "tent", "shot-im", "eata"])
    func lossGradients(name: String) {
        var rng = SeededRandom(seed: 9)
        var logits = GradCheck.randomTensor([6, 5], &rng, scale: 2)
        if name == "eata" { for r in 0..<3 { logits.data[r * 5 + r] += 8 } }  // three confident samples pass the filter
        let labels = [0, 1, 2, 3, 4, 0]
        // EATA holds its sample weights constant in the gradient (as EATA does), so its numeric reference
        // is Σ w_i·H_i(z) / n over the samples selected at the original logits, with w_i fixed there.
        let margin: Float = 1.2
        let p0 = Losses.softmax(logits)
        let h0 = Losses.entropies(p0, n: 6, k: 5)
        let selected = (0..<6).filter { h0[$0] < margin }
        let weights = h0.map { 1 / expf($0 - margin) }
        func eataFixed(_ t: Tensor) -> Float {
            let h = Losses.entropies(Losses.softmax(t), n: 6, k: 5)
            return selected.reduce(0) { $0 + weights[$1] * h[$1] } / Float(selected.count)
        }
        func f(_ t: Tensor) -> (Float, Tensor) {
            switch name {
            case "ce": return Losses.crossEntropy(t, labels: labels)
            case "tent": return Losses.entropy(t)
            case "shot-im": return Losses.informationMaximisation(t)
            default: return (eataFixed(t), Losses.filteredEntropy(t, margin: margin).grad)
            }
        }
        let analytic = f(logits).1.data.map(Double.init)
        var numeric = [Double](repeating: 0, count: logits.count)
        let h: Float = 1e-2
        for i in 0..<logits.count {
            var a = logits, b = logits
            a.data[i] += h
            b.data[i] -= h
            numeric[i] = Double(f(a).0 - f(b).0) / Double(2 * h)
        }
        if name == "eata" { #expect(selected.count == 3) }
        #expect(GradCheck.relErr(analytic, numeric) < 2e-3, "\(name)")
    }

    @Test func wholeBlocksWithAdapters() {
        var rng = SeededRandom(seed: 11)
        for make in [
            { (s: ParameterStore, r: inout SeededRandom) in Block.basic(s, name: "b", in: 3, out: 4, stride: 2, inputSize: (6, 6), rng: &r) },
            { (s: ParameterStore, r: inout SeededRandom) in Block.invertedResidual(s, name: "b", in: 4, out: 4, stride: 1, expansion: 2, inputSize: (6, 6), rng: &r) },
            // Elastic variants: pruned inner widths and the shortcut-only skip.
            { (s: ParameterStore, r: inout SeededRandom) in Block.basic(s, name: "b", in: 3, out: 4, stride: 2, inputSize: (6, 6), hidden: 2, rng: &r) },
            { (s: ParameterStore, r: inout SeededRandom) in Block.invertedResidual(s, name: "b", in: 4, out: 4, stride: 1, expansion: 2, inputSize: (6, 6), hidden: 3, rng: &r) },
            { (s: ParameterStore, r: inout SeededRandom) in Block.shortcutOnly(s, name: "b", in: 3, out: 4, stride: 2, inputSize: (6, 6), rng: &r) },
        ] {
            let store = ParameterStore()
            let block = make(store, &rng)
            block.attachAdapter(.parallel, store: store, rng: &rng)
            // Give the zero-initialised adapter weights values so its gradient path is exercised.
            for e in store.entries where e.name.contains("adapter") { for i in 0..<e.count { store.values[e.offset + i] = rng.normal() * 0.3 } }
            let e = GradCheck.check(block, store: store, input: GradCheck.randomTensor([3, block.inChannels, 6, 6], &rng), h: 1e-3)
            #expect(e.input < 1e-2 && e.params < 1e-2, "\(block.kind): \(e)")
        }
    }
}
