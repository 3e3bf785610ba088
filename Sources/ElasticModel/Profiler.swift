import Foundation
import Learning

/// What running one block variant (or a fixed part) costs, at batch 1 on the machine that built the package.
public struct CostProfile: Codable, Sendable, Equatable {
    /// 2 × multiply-adds of the convolutions and linear layers (the adapter's included: it runs with every variant).
    public var flops: Double
    /// Parameters and buffers that must be resident, in bytes (float32), the position's adapter included.
    public var paramBytes: Int
    /// Largest (layer input + layer output) while it runs, plus the block input held for the residual sum.
    public var peakActivationBytes: Int
    /// The tensor it hands on: what crosses the link when the network is cut after it.
    public var outputBytes: Int
    /// Median of timed runs after warm-up (evaluation mode, one BLAS thread).
    public var latencyMs: Double

    public init(flops: Double, paramBytes: Int, peakActivationBytes: Int, outputBytes: Int, latencyMs: Double) {
        self.flops = flops
        self.paramBytes = paramBytes
        self.peakActivationBytes = peakActivationBytes
        self.outputBytes = outputBytes
        self.latencyMs = latencyMs
    }

    enum CodingKeys: String, CodingKey {
        case flops
        case paramBytes = "param_bytes"
        case peakActivationBytes = "peak_activation_bytes"
        case outputBytes = "output_bytes"
        case latencyMs = "latency_ms"
    }
}

public enum Profiler {
    /// Median wall time of `body` over `runs` runs after `warmup` runs, in milliseconds.
    public static func medianMs(runs: Int, warmup: Int, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        var times: [Double] = []
        for _ in 0..<max(1, runs) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        times.sort()
        return times[times.count / 2]
    }

    /// Static costs of a layer sequence on a (C, H, W) input: flops, peak (in + out) floats, output shape.
    static func walk(_ layers: [Layer], input: [Int]) -> (flops: Double, peak: Int, output: [Int]) {
        var s = input, flops = 0.0, peak = 0
        for layer in layers {
            let out: [Int]
            switch layer {
            case let conv as Conv2d:
                let (ho, wo) = conv.outputSize(s[1], s[2])
                out = [conv.outChannels, ho, wo]
                flops += 2 * Double(conv.outChannels * (conv.inChannels / conv.groups) * conv.kernel * conv.kernel * ho * wo)
            case let graph as GraphLayer:
                let r = walk(graph.graph, input: s)
                flops += r.flops
                peak = max(peak, r.peak)
                out = r.output
            case let seq as Sequential:
                let r = walk(seq.layers, input: s)
                flops += r.flops
                peak = max(peak, r.peak)
                out = r.output
            default:
                out = OpGraph.describe(layer, input: s, fallbackName: "").1
            }
            peak = max(peak, s.reduce(1, *) + out.reduce(1, *))
            s = out
        }
        return (flops, peak, s)
    }

    /// Static costs of a one-input graph on a per-sample input: flops, peak (inputs + output) floats, output shape.
    static func walk(_ g: Graph, input: [Int]) -> (flops: Double, peak: Int, output: [Int]) {
        var shapes = [input], flops = 0.0, peak = 0
        for node in g.nodes {
            let x = shapes[node.inputs[0]]
            var y = x
            switch node.op {
            case .conv(let c, _, _):
                let (h, w) = c.outputSize(x[1], x[2])
                y = [c.outChannels, h, w]
                flops += 2 * Double(c.outChannels * (c.inChannels / c.groups) * c.kernel * c.kernel * h * w)
            case .add, .mul:
                let z = shapes[node.inputs[1]]
                if z.reduce(1, *) > x.reduce(1, *) { y = z }
            case .pool(let p):
                let (h, w) = p.outputSize(x[1], x[2])
                y = [x[0], h, w]
            case .globalAveragePool: y = [x[0], 1, 1]
            case .reduceMean(let keep): y = keep ? [x[0], 1, 1] : [x[0]]
            case .flatten: y = [x.reduce(1, *)]
            case .reshape(let perSample): y = perSample
            case .gemm(let d, _, _):
                y = [d.outFeatures]
                flops += 2 * Double(d.inFeatures * d.outFeatures)
            case .upsample(let h, let w): y = [x[0], h, w]
            case .batchNorm, .activation, .identity, .dropout: break
            }
            peak = max(peak, node.inputs.reduce(y.reduce(1, *)) { $0 + shapes[$1].reduce(1, *) })
            shapes.append(y)
        }
        return (flops, peak, shapes[g.outputs[0]])
    }

    /// Profiles the block currently at position p of `net` (with its adapter) on `sample` (1, C, H, W).
    public static func profileBlock(_ net: ElasticNetwork, position p: Int, variant v: Int, sample: Tensor, runs: Int, warmup: Int) -> CostProfile {
        let block = net.variantBlocks[p][v]
        let input = Array(sample.shape.dropFirst())
        let inFloats = input.reduce(1, *)
        var flops = 0.0, peak = 0
        var output = input
        if let main = block.main {
            let r = walk(main.layers, input: input)
            flops += r.flops; peak = max(peak, r.peak); output = r.output
        }
        if let s = block.shortcut {
            let r = walk(s.layers, input: input)
            flops += r.flops; peak = max(peak, r.peak + (block.main == nil ? 0 : output.reduce(1, *))); output = r.output
        }
        if let a = block.adapter {
            let r = walk([a], input: input)
            flops += r.flops; peak = max(peak, r.peak + output.reduce(1, *))
        }
        if block.residual, block.main != nil { peak += inFloats }
        let store = net.model.store
        let names = net.tensorNames(position: p, variant: v) + net.adapterTensorNames(position: p)
        let paramFloats = names.reduce(0) { $0 + (store.entry($1)?.count ?? 0) }
        let latency = medianMs(runs: runs, warmup: warmup) { _ = block.forward(sample, training: false) }
        return CostProfile(flops: flops, paramBytes: 4 * paramFloats, peakActivationBytes: 4 * max(peak, inFloats),
                           outputBytes: 4 * output.reduce(1, *), latencyMs: latency)
    }

    /// Profiles the stem on an input sample (1, C, H, W).
    public static func profileStem(_ net: ElasticNetwork, sample: Tensor, runs: Int, warmup: Int) -> CostProfile {
        let r = walk(net.model.stem.layers, input: Array(sample.shape.dropFirst()))
        let floats = net.model.store.entries.filter { $0.name.hasPrefix("stem.") }.reduce(0) { $0 + $1.count }
        let latency = medianMs(runs: runs, warmup: warmup) { _ = net.model.stem.forward(sample, training: false) }
        return CostProfile(flops: r.flops, paramBytes: 4 * floats, peakActivationBytes: 4 * r.peak, outputBytes: 4 * r.output.reduce(1, *),
                           latencyMs: latency)
    }

    /// Profiles the head (pool + classifier, its hidden layers included) on the last block's output (1, C, H, W).
    public static func profileHead(_ net: ElasticNetwork, sample: Tensor, runs: Int, warmup: Int) -> CostProfile {
        let head = net.model.head
        let floats = net.model.store.entries.filter { $0.name.hasPrefix("head.") }.reduce(0) { $0 + $1.count }
        let latency = medianMs(runs: runs, warmup: warmup) {
            _ = net.model.classify(net.model.pool.forward(sample, training: false))
        }
        var flops = 2 * Double(head.inFeatures * head.outFeatures)
        var widest = head.inFeatures
        for node in net.model.headHidden?.graph.nodes ?? [] {
            if case .gemm(let d, _, _) = node.op {
                flops += 2 * Double(d.inFeatures * d.outFeatures)
                widest = max(widest, d.inFeatures + d.outFeatures)
            }
        }
        return CostProfile(flops: flops, paramBytes: 4 * floats, peakActivationBytes: 4 * (sample.count + widest),
                           outputBytes: 4 * head.outFeatures, latencyMs: latency)
    }

    /// Latency of the whole current composition at batch 1.
    public static func networkLatencyMs(_ net: ElasticNetwork, sample: Tensor, runs: Int, warmup: Int) -> Double {
        medianMs(runs: runs, warmup: warmup) { _ = net.model.forward(sample, training: false) }
    }
}
