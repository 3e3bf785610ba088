import Foundation
import Testing
import ElasticModel
import Learning
@testable import ONNX
@testable import ONNXImport

/// ONNX → engine graph: the trained fixtures reproduce PyTorch's logits, eval-mode exports get their batch norms
/// back without changing the function, torchvision's structure-only exports convert and run, and what the engine
/// cannot compute exactly is refused naming the node and the op.
@Suite struct ONNXImportTests {
    static let spec = ONNXInputSpec(channels: 3, height: 32, width: 32)

    /// The reference input (8, 3, 32, 32) and PyTorch's logits (8, 10) of a trained fixture.
    static func reference(_ file: String) throws -> (input: Tensor, logits: Tensor) {
        let name = String(file.prefix { $0 != "." }) + ".reference.safetensors"
        let (tensors, _) = try SafeTensors.decode([UInt8](try Fixtures.data(name)))
        let x = try #require(tensors["input"]), y = try #require(tensors["logits"])
        return (Tensor(shape: x.shape, data: try x.floats()), Tensor(shape: y.shape, data: try y.floats()))
    }

    static func maxAbs(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
        return zip(a.data, b.data).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static func logits(_ net: ImportedNetwork, _ x: Tensor) -> Tensor {
        InferenceGraph(net.graph, store: net.store).forward([x])[0]
    }

    @Test(arguments: Fixtures.trained)
    func trainedExportReproducesPyTorchLogits(file: String) throws {
        let onnx = try ONNXLoader().load(contentsOf: Fixtures.url(file))
        let net = try ONNXImporter.convert(onnx, input: Self.spec)
        let (x, reference) = try Self.reference(file)
        let y = Self.logits(net, x)
        let diff = Self.maxAbs(y, reference)
        print("import \(file): max |logits - PyTorch| = \(diff)")
        #expect(diff < 1e-4, "\(file): \(diff)")
        #expect(net.classes == 10 && net.insertedBatchNorms.isEmpty && net.hasSourceWeights)
        // Every weight the file's nodes read is a store parameter under its name in the file.
        for node in onnx.nodes {
            switch node.op {
            case .conv(let c): #expect(net.store.entry(c.weight)?.shape == onnx.initializers[c.weight]?.dims)
            case .gemm(let w, _): #expect(net.store.entry(w)?.shape == onnx.initializers[w]?.dims)
            case .batchNormalization(let bn): #expect(net.store.entry(bn.mean)?.isBuffer == true)
            default: break
            }
        }
    }

    /// Eval-mode exports get a batch norm after every folded conv, preserve-mode ones none; the logits stay within
    /// 1e-4 of PyTorch's with the fresh (identity) batch norms and after their statistics are estimated on images.
    @Test(arguments: Fixtures.trained)
    func batchNormReinsertionKeepsTheFunction(file: String) throws {
        let onnx = try ONNXLoader().load(contentsOf: Fixtures.url(file))
        let net = try ONNXImporter.convert(onnx, input: Self.spec, batchNorm: .afterFoldedConvolutions)
        let folded = onnx.nodes.filter { if case .conv(let c) = $0.op { return c.weight.hasPrefix("onnx::Conv") } else { return false } }.count
        let bns = onnx.opCounts["BatchNormalization"] ?? 0
        if file.contains(".eval.") {
            #expect(bns == 0 && folded > 0 && net.insertedBatchNorms.count == folded, "\(file)")
        } else {
            #expect(bns > 0 && net.insertedBatchNorms.isEmpty, "\(file)")
        }
        let (x, reference) = try Self.reference(file)
        let fresh = Self.maxAbs(Self.logits(net, x), reference)
        // Statistics from images other than the ones compared on: the reference images flipped left-right.
        var flipped = x
        let (h, w) = (x.shape[2], x.shape[3])
        for plane in 0..<(x.shape[0] * x.shape[1]) {
            for r in 0..<h { for c in 0..<w { flipped.data[plane * h * w + r * w + c] = x.data[plane * h * w + r * w + (w - 1 - c)] } }
        }
        try ONNXImporter.estimateStatistics(net, on: [flipped, x])
        let estimated = Self.maxAbs(Self.logits(net, x), reference)
        print("import \(file): \(net.insertedBatchNorms.count) batch norms re-inserted; max |logits - PyTorch| fresh \(fresh), with estimated statistics \(estimated)")
        #expect(fresh < 1e-4 && estimated < 1e-4, "\(file): \(fresh) \(estimated)")
        if let first = net.insertedBatchNorms.first, case .batchNorm(_, _, let mean, let variance, _, _) = net.graph.nodes[first].op {
            let m = try #require(net.store.tensor(net.store.entries[mean].name)), v = try #require(net.store.tensor(net.store.entries[variance].name))
            #expect(m.data.contains { $0 != 0 } && v.data.contains { $0 != 1 - ONNXImporter.insertedEpsilon } && v.data.allSatisfy { $0 >= 0 })
        }
        // A training-mode pass (batch statistics, as BN adaptation runs) changes the output: the statistics are live.
        let trained = net.graph.forward([x], store: net.store, training: true, tape: nil)[0]
        if !net.insertedBatchNorms.isEmpty { #expect(Self.maxAbs(trained, reference) > 1e-4) }
    }

    /// torchvision's nets as structure-only exports (weights stripped, initialised here, seeded) convert in both
    /// export modes and run forward at 3×32×32, the 1×1 stages included.
    @Test(arguments: ["resnet18", "mobilenet_v2", "mobilenet_v3_small"].flatMap { ["\($0).eval.weightless.onnx", "\($0).preserve.weightless.onnx"] })
    func torchvisionStructuresConvertAndRun(file: String) throws {
        let onnx = try ONNXLoader(weights: .optional).load(contentsOf: Fixtures.url(file))
        let net = try ONNXImporter.convert(onnx, input: Self.spec, batchNorm: .afterFoldedConvolutions)
        #expect(!net.hasSourceWeights)
        var rng = SeededRandom(seed: 5)
        let x = Tensor(shape: [2, 3, 32, 32], data: (0..<(2 * 3 * 32 * 32)).map { _ in rng.normal() })
        let y = Self.logits(net, x)
        #expect(y.shape == [2, 1000] && net.classes == 1000, "\(file): \(y.shape)")
        #expect(y.data.allSatisfy { $0.isFinite })
        let again = try ONNXImporter.convert(onnx, input: Self.spec, batchNorm: .afterFoldedConvolutions)
        #expect(Self.logits(again, x) == y, "a weightless import is reproducible")
    }

    /// Block detection (the cut-node method) on imported graphs: resnet18's eight basic blocks, mobilenet_v2's
    /// inverted residuals (features.1 ... features.18), the stem and the head as fixed parts.
    @Test(arguments: [("resnet18", 8), ("mobilenet_v2", 18), ("mobilenet_v3_small", 12)])
    func blocksOfImportedGraphs(model: String, blocks: Int) throws {
        for mode in ["eval", "preserve"] {
            let onnx = try ONNXLoader(weights: .optional).load(contentsOf: Fixtures.url("\(model).\(mode).weightless.onnx"))
            let net = try ONNXImporter.convert(onnx, input: Self.spec, batchNorm: .afterFoldedConvolutions)
            let found = BlockDetection.detect(OpGraph(graph: net.graph, shapes: net.valueShapes))
            print("blocks of \(model) (\(mode)): \(found.blocks.count): \(found.blocks.map { $0.modules.joined(separator: "+") })")
            #expect(found.blocks.count == blocks, "\(model) \(mode): \(found.blocks.map(\.modules))")
            #expect(found.stem?.modules == ["stem"] || found.stem?.modules == ["features.0"], "\(String(describing: found.stem?.modules))")
            #expect(found.head?.modules == ["head"])
            #expect(found.blocks.allSatisfy { !$0.compressibleLayers.isEmpty })
            if model == "resnet18" {
                #expect(found.blocks.map { $0.modules } == ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"].map { [$0] })
                #expect(found.blocks.allSatisfy { $0.hasBranch })
                #expect(found.blocks.last?.outputShape == [512, 1, 1])
            }
        }
    }

    /// The imported graph's blocks as node sets: resnet18's eight hold conv1 as their inner convolution (conv2 and
    /// the projection write the block's output) and are residual; mobilenet_v2's expand convs are inner (through
    /// the depthwise conv), its first block (no expansion) and last (1×1 to the head) have none. A variant keeping
    /// every filter computes the block exactly; one keeping half, after the half with the smallest L1 norm was set
    /// to zero, computes the same output with half the filters (the right filters and input channels were kept).
    @Test(arguments: ["resnet18", "mobilenet_v2"])
    func innerConvolutionsPruneToVariants(model: String) throws {
        let onnx = try ONNXLoader(weights: .optional).load(contentsOf: Fixtures.url("\(model).eval.weightless.onnx"))
        let net = try ONNXImporter.convert(onnx, input: Self.spec, batchNorm: .afterFoldedConvolutions)
        let blocks = try GraphBlocks.detect(net.graph, shapes: net.valueShapes)
        let inner = blocks.map { $0.innerConvolutions.map { net.graph.nodes[$0.convolution].name } }
        print("inner convolutions of \(model): \(inner.map(\.count))")
        if model == "resnet18" {
            #expect(blocks.count == 8 && blocks.allSatisfy { $0.residual })
            #expect(inner.allSatisfy { $0.count == 1 && $0[0].hasSuffix("/conv1/Conv") }, "\(inner)")
        } else {
            #expect(blocks.count == 18)
            #expect(inner.first == [] && inner.last == [] && inner.dropFirst().dropLast().allSatisfy { $0.count == 1 }, "\(inner)")
            #expect(blocks.filter { $0.residual }.count == 10)
        }
        var rng = SeededRandom(seed: 9)
        let x = Tensor(shape: [2, 3, 32, 32], data: (0..<(2 * 3 * 32 * 32)).map { _ in rng.normal() })
        try ONNXImporter.estimateStatistics(net, on: [x])
        for block in blocks where !block.innerConvolutions.isEmpty {
            var probe = net.graph
            probe.outputs = [block.entry, block.exit]
            let run = { InferenceGraph(probe, store: net.store).forward([x]) }
            var values = run()
            let wholeStore = ParameterStore()
            let whole = try GraphBlocks.variant(block, of: net.graph, store: net.store, keep: 1, into: wholeStore, prefix: "v.")
            #expect(InferenceGraph(whole, store: wholeStore).forward([values[0]])[0] == values[1], "\(block.name)")
            // Zero every odd filter of each inner conv (weights and the biases of it and of its depthwise followers) and
            // strengthen the even ones, so L1 keeps the even half and pruning the odd half changes nothing.
            for chain in block.innerConvolutions {
                func zeroBias(_ node: Int) throws {
                    guard case .conv(_, _, let b?) = net.graph.nodes[node].op else { return }
                    let name = net.store.entries[b].name
                    var bias = net.store.tensor(name)!.data
                    for f in stride(from: 1, to: chain.filters, by: 2) { bias[f] = 0 }
                    try net.store.set(name, bias)
                }
                guard case .conv(_, let w, _) = net.graph.nodes[chain.convolution].op else { continue }
                let e = net.store.entries[w], per = e.count / chain.filters
                var data = net.store.tensor(e.name)!.data
                for f in 0..<chain.filters {
                    for i in 0..<per { data[f * per + i] = f % 2 == 1 ? 0 : data[f * per + i] + (data[f * per + i] >= 0 ? 1 : -1) }
                }
                try net.store.set(e.name, data)
                try zeroBias(chain.convolution)
                for f in chain.channelWise { try zeroBias(f) }
            }
            values = run()
            let target = ParameterStore()
            let half = try GraphBlocks.variant(block, of: net.graph, store: net.store, keep: 0.5, into: target, prefix: "v.")
            let y = InferenceGraph(half, store: target).forward([values[0]])[0]
            #expect(y.shape == values[1].shape)
            let scale = values[1].data.reduce(0) { max($0, abs($1)) }
            let diff = Self.maxAbs(y, values[1])
            #expect(diff <= 1e-4 * max(scale, 1), "\(block.name): \(diff) of \(scale)")
            for chain in block.innerConvolutions {
                let name = net.graph.nodes[chain.convolution].name
                let pruned = half.nodes.first { $0.name == name }
                guard case .conv(let c, _, _)? = pruned?.op else { Issue.record("\(name) missing"); continue }
                #expect(c.outChannels == (chain.filters + 1) / 2 || c.outChannels == chain.filters / 2, "\(name)")
            }
            #expect(target.values.count < wholeStore.values.count)
        }
    }

    /// ReduceMean over H, W (keepdims 1 then a static Reshape [0, -1], or keepdims 0 straight into Gemm) and an
    /// inference Dropout convert to the same network as GlobalAveragePool + Flatten: equal logits.
    @Test func reduceMeanReshapeAndDropoutConvertLikePoolAndFlatten() throws {
        var base = Synth.baseModel()
        var rng = SeededRandom(seed: 11)
        for k in base.graph.initializer.indices {
            base.graph.initializer[k].floatData = base.graph.initializer[k].floatData.map { _ in rng.normal() }
        }
        let spec = ONNXInputSpec(channels: 3, height: 8, width: 8)
        let x = Tensor(shape: [3, 3, 8, 8], data: (0..<(3 * 3 * 64)).map { _ in rng.normal() })
        let reference = Self.logits(try ONNXImporter.convert(try ONNXLoader().load(Synth.bytes(base)), input: spec), x)

        var keep = base
        keep.graph.initializer.append(Synth.int64Tensor("shape", [0, -1]))
        keep.graph.node[2] = Synth.node("ReduceMean", ["r"], ["p"], name: "/pool/ReduceMean",
                                        [Synth.attr("axes", ints: [2, 3]), Synth.attr("keepdims", int: 1)])
        keep.graph.node[3] = Synth.node("Reshape", ["p", "shape"], ["f0"], name: "/Reshape")
        keep.graph.node.insert(Synth.node("Dropout", ["f0"], ["f"], name: "/drop/Dropout"), at: 4)
        let keepNet = try ONNXImporter.convert(try ONNXLoader().load(Synth.bytes(keep)), input: spec)
        #expect(keepNet.graph.nodes.contains { $0.op == .reduceMean(keepDims: true) })
        #expect(keepNet.graph.nodes.contains { $0.op == .reshape(perSample: [4]) })
        #expect(Self.logits(keepNet, x) == reference)

        var flat = base
        flat.graph.node[2] = Synth.node("ReduceMean", ["r"], ["f"], name: "/pool/ReduceMean",
                                        [Synth.attr("axes", ints: [2, 3]), Synth.attr("keepdims", int: 0)])
        flat.graph.node.remove(at: 3)
        let flatNet = try ONNXImporter.convert(try ONNXLoader().load(Synth.bytes(flat)), input: spec)
        #expect(flatNet.graph.nodes.contains { $0.op == .reduceMean(keepDims: false) })
        #expect(Self.logits(flatNet, x) == reference)
    }

    /// Combinations of an imported network: the original blocks re-composed, or every block replaced by its
    /// keep-all variant, compute the network bit for bit; skips (identity, or the projection shortcut of resnet's
    /// downsampling blocks) and half-width variants run with the right logits' shape and change them.
    @Test func importedCombinationsCompose() throws {
        let onnx = try ONNXLoader().load(contentsOf: Fixtures.url("se_resnet.eval.onnx"))
        let net = try ONNXImporter.convert(onnx, input: Self.spec, batchNorm: .afterFoldedConvolutions)
        let (x, _) = try Self.reference("se_resnet.eval.onnx")
        try ONNXImporter.estimateStatistics(net, on: [x])
        let original = Self.logits(net, x)
        let blocks = try GraphBlocks.detect(net.graph, shapes: net.valueShapes)
        print("blocks of se_resnet: \(blocks.map(\.name)), residual \(blocks.map(\.residual)), inner \(blocks.map { $0.innerConvolutions.count })")
        #expect(blocks.count == 3 && blocks.allSatisfy { $0.residual })
        let run = { (g: Graph) in InferenceGraph(g, store: net.store).forward([x])[0] }
        #expect(run(GraphBlocks.compose(net.graph, blocks: blocks, replacing: [:])) == original)
        var whole: [Int: Graph] = [:], half: [Int: Graph] = [:], skip: [Int: Graph] = [:]
        for (p, b) in blocks.enumerated() {
            whole[p] = try GraphBlocks.variant(b, of: net.graph, store: net.store, keep: 1, into: net.store, prefix: "b\(p).s0.")
            half[p] = try GraphBlocks.variant(b, of: net.graph, store: net.store, keep: 0.5, into: net.store, prefix: "b\(p).s50.")
            let s: Graph = try #require(try GraphBlocks.skipVariant(b, of: net.graph, store: net.store, into: net.store, prefix: "b\(p).skip."))
            skip[p] = s
        }
        #expect(run(GraphBlocks.compose(net.graph, blocks: blocks, replacing: whole)) == original)
        for replacing in [half, skip, [0: skip[0]!, 1: half[1]!]] {
            let y = run(GraphBlocks.compose(net.graph, blocks: blocks, replacing: replacing))
            #expect(y.shape == original.shape && y.data.allSatisfy { $0.isFinite } && y != original)
        }
        // The composed graph trains: a backward pass reaches the variant's parameters.
        let g = GraphBlocks.compose(net.graph, blocks: blocks, replacing: [1: half[1]!])
        net.store.zeroGrads()
        let tape = Tape()
        let logits = g.forward([x], store: net.store, training: true, tape: tape)[0]
        _ = g.backward([Losses.crossEntropy(logits, labels: Array(repeating: 1, count: x.n)).grad], store: net.store, tape: tape)
        let e = try #require(net.store.entries.firstIndex { $0.name.hasPrefix("b1.s50.") && !$0.isBuffer })
        let entry = net.store.entries[e]
        #expect(net.store.grads[entry.offset..<(entry.offset + entry.count)].contains { $0 != 0 })
    }

    /// A conv with asymmetric pads, or an Add of a constant, is refused naming the node and op; never a wrong network.
    @Test func whatTheEngineCannotComputeIsRefused() throws {
        var m = Synth.baseModel()
        m.graph.node[0].attribute[1] = Synth.attr("pads", ints: [1, 0, 1, 2])
        let pads = try #require(throws: ONNXError.self) {
            try ONNXImporter.convert(try ONNXLoader().load(Synth.bytes(m)), input: ONNXInputSpec(channels: 3, height: 8, width: 8))
        }
        #expect(pads.kind == .unsupportedAttribute && pads.node == "/conv/Conv" && pads.op == "Conv")
        #expect(pads.description.contains("ONNX node '/conv/Conv' (Conv): pads [1, 0, 1, 2] are not supported"))

        var c = Synth.baseModel()
        c.graph.initializer.append(Synth.tensor("offset", [1, 4, 1, 1]))
        c.graph.node.insert(Synth.node("Add", ["r", "offset"], ["ra"], name: "/offset/Add"), at: 2)
        c.graph.node[3].input = ["ra"]
        let constant = try #require(throws: ONNXError.self) {
            try ONNXImporter.convert(try ONNXLoader().load(Synth.bytes(c)), input: ONNXInputSpec(channels: 3, height: 8, width: 8))
        }
        #expect(constant.node == "/offset/Add" && constant.op == "Add" && constant.message.contains("'offset' is a constant"))

        // The loader's refusals reach the importer's caller unchanged (LeakyRelu named with its node).
        let leaky = try #require(throws: ONNXError.self) { try ONNXLoader().load(contentsOf: Fixtures.url("refused_leakyrelu.onnx")) }
        #expect(leaky.kind == .unsupportedOp && leaky.op == "LeakyRelu" && leaky.node != nil)
    }
}
