import Foundation
import Learning

/// The offline phase for a graph-defined network (an imported classifier): detect its blocks, cut the stem, each
/// block's original and L1-pruned variants (and `skip` where residual) and the head out of its graph, distil every
/// derived variant against the original network's own features on the user's unlabeled images, profile, fit the
/// accuracy estimator (on labelled images, or on the teacher's own top-1 answers), and write a `graph` package.
public enum GraphPackageBuilder {
    /// The engine's input normalisation (`LabeledImages.tensor`'s defaults): every consumer of a package (training
    /// loops, the agent, the edge, the ONNX export) feeds the network (pixel / 255 − mean) / std with these.
    public static let engineMean: Float = 0.2860
    public static let engineStd: Float = 0.3530

    /// The network to package: a one-input graph computing logits from the model's own normalised input.
    public struct Source {
        public var graph: Graph
        public var store: ParameterStore
        /// Per-sample shape of every value of `graph`.
        public var valueShapes: [[Int]]
        public var description: String
        public init(graph: Graph, store: ParameterStore, valueShapes: [[Int]], description: String) {
            self.graph = graph
            self.store = store
            self.valueShapes = valueShapes
            self.description = description
        }
        var inputShape: [Int] { valueShapes[0] }
        var classes: Int { valueShapes[graph.outputs[0]][0] }
    }

    public struct Report: Sendable {
        public var blocks: [GraphBlock]
        /// Max |Δlogits| between the package's original combination and the source graph, on the first source images.
        public var originalMaxAbsDifference: Float
        /// `[position][variant]` single-swap accuracy (or agreement) before distillation.
        public var undistilledAccuracy: [[Double]]
        public var seconds: [ElasticBuilder.Phase: Double]
    }

    /// - Parameters:
    ///   - preprocessing: how images become the model's input; its `mean`/`std` go into the stem's first node.
    ///   - sourceImages: unlabeled RGB (or gray) images (uint8, after resize and crop) distillation runs on.
    ///   - validation: labelled images for accuracy; nil measures top-1 agreement with the source on `sourceImages`.
    public static func build(_ source: Source, name: String, preprocessing: PackageManifest.InputPreprocessing, classNames: [String]?,
                             sourceImages: LabeledImages, validation: LabeledImages?, dataset: String, options: ElasticBuilder.Options,
                             progress: (ElasticBuilder.Phase, Int, Int) -> Void = { _, _, _ in }) throws -> (ElasticPackage, Report) {
        var seconds: [ElasticBuilder.Phase: Double] = [:]
        var phaseStart = Date()
        func finish(_ p: ElasticBuilder.Phase) { seconds[p] = Date().timeIntervalSince(phaseStart); phaseStart = Date() }
        let g = source.graph
        guard g.inputCount == 1, g.outputs.count == 1, source.valueShapes.count == g.valueCount else {
            throw PackageError.unsupported("the network must have one input and one output")
        }
        let input = source.inputShape
        guard preprocessing.mean.count == input[0], preprocessing.std.count == input[0] else {
            throw PackageError.unsupported("mean and std need \(input[0]) values, one per input channel")
        }
        guard sourceImages.count >= 2, [sourceImages.channels, sourceImages.height, sourceImages.width] == input else {
            throw PackageError.unsupported("source images must be at least 2 of \(input)")
        }

        progress(.detect, 0, 1)
        let blocks = try GraphBlocks.detect(g, shapes: source.valueShapes)
        guard !blocks.isEmpty else { throw PackageError.unsupported("no blocks found between the stem and the classifier") }
        // The stem, the blocks and the head must tile the graph: block p + 1 reads what block p returns.
        for p in blocks.indices.dropFirst() where blocks[p].entry != blocks[p - 1].exit {
            throw PackageError.unsupported("block \(blocks[p].name) does not read what \(blocks[p - 1].name) returns")
        }
        let stemEnd = blocks[0].entry - 1   // the node computing block 0's input
        guard stemEnd >= 0 else { throw PackageError.unsupported("the network has no stem before its first block") }
        let headStart = blocks.last!.exit   // first node after the last block (value exit = node exit − 1)
        let covered = (stemEnd + 1) + blocks.reduce(0) { $0 + $1.nodes.count } + (g.nodes.count - headStart)
        guard covered == g.nodes.count, blocks.allSatisfy({ $0.nodes.first! > stemEnd && $0.nodes.last! < headStart }) else {
            throw PackageError.unsupported("the detected blocks do not split the network into stem, blocks and classifier")
        }

        // The stem: the input normalisation (engine tensor → the model's), then the network's first nodes. A BGR model
        // gets its channels reversed here too (a 1×1 convolution holding the permutation), so every consumer feeds RGB.
        var tensors: [String: SafeTensor] = [:]
        let c = input[0]
        let scratch = ParameterStore()
        var weights = [Float](repeating: 0, count: c * c)
        for o in 0..<c { weights[o * c + sourceChannel(o, c, preprocessing)] = engineStd / preprocessing.std[o] }
        let normWeight = try scratch.register("input_normalization.weight", shape: [c, c, 1, 1], values: weights)
        let normBias = try scratch.register("input_normalization.bias", shape: [c],
                                            values: zip(preprocessing.mean, preprocessing.std).map { (engineMean - $0) / $1 })
        var stemGraph = Graph(inputs: 1)
        var map = [stemGraph.add(.conv(Convolution(in: c, out: c, kernel: 1), weight: normWeight, bias: normBias), [0],
                                 name: "input_normalization")]
        var copied: [Int: Int] = [:]
        func copy(_ id: Int) throws -> Int {
            if let done = copied[id] { return done }
            let e = source.store.entries[id]
            let new = try scratch.register("\(id)." + e.name, shape: e.shape, values: try values(source.store, id), buffer: e.isBuffer)
            copied[id] = new
            return new
        }
        for k in 0...stemEnd {
            let node = g.nodes[k]
            var op = node.op
            switch node.op {
            case .conv(let conv, let w, let b): op = .conv(conv, weight: try copy(w), bias: try b.map(copy))
            case .batchNorm(let gamma, let beta, let mean, let variance, let eps, let momentum):
                op = .batchNorm(gamma: try copy(gamma), beta: try copy(beta), mean: try copy(mean), variance: try copy(variance), eps: eps, momentum: momentum)
            case .gemm(let d, let w, let b): op = .gemm(d, weight: try copy(w), bias: try b.map(copy))
            default: break
            }
            map.append(stemGraph.add(op, node.inputs.map { map[$0] }, name: node.name))
        }
        stemGraph.outputs = [map[blocks[0].entry]]
        let stem = try GraphSpec.Part(stemGraph, store: scratch, prefix: "stem.", tensors: &tensors)

        // The head: a global pool and reshapes, then the classifier: hidden layers kept whole (gemms and element-wise
        // ops, e.g. MobileNetV3's Linear → Hardswish → Dropout) and one final Gemm whose weights become `head`.
        let head = Array(headStart..<g.nodes.count)
        let (hidden, dense, w, b) = try classifier(g, head: head, shapes: source.valueShapes)
        var headHidden: GraphSpec.Part?
        if !hidden.isEmpty {
            var hiddenGraph = Graph(inputs: 1)
            var remap = [g.nodes[hidden[0]].inputs[0]: 0]
            for k in hidden {
                let node = g.nodes[k]
                var op = node.op
                if case .gemm(let d, let hw, let hb) = op { op = .gemm(d, weight: try copy(hw), bias: try hb.map(copy)) }
                remap[g.inputCount + k] = hiddenGraph.add(op, [remap[node.inputs[0]]!], name: node.name)
            }
            hiddenGraph.outputs = [remap[g.inputCount + hidden.last!]!]
            headHidden = try GraphSpec.Part(hiddenGraph, store: scratch, prefix: GraphSpec.headPrefix, tensors: &tensors)
        }
        tensors["head.weight"] = SafeTensor(floats: try values(source.store, w), shape: [dense.outFeatures, dense.inFeatures])
        tensors["head.bias"] = SafeTensor(floats: try b.map { try values(source.store, $0) } ?? [Float](repeating: 0, count: dense.outFeatures),
                                          shape: [dense.outFeatures])

        // Every position: the original, the pruned widths and the skip.
        var parts: [[GraphSpec.Part]] = []
        var positions: [PositionSpec] = []
        for (p, block) in blocks.enumerated() {
            let inShape = source.valueShapes[block.entry], outShape = source.valueShapes[block.exit]
            guard inShape.count == 3, outShape.count == 3, let stride = adapterStride(from: inShape, to: outShape) else {
                throw PackageError.unsupported("block \(block.name) maps \(inShape) to \(outShape); blocks must keep (C, H, W) at a stride")
            }
            var variants: [VariantSpec] = [], graphs: [GraphSpec.Part] = []
            let filters = block.innerConvolutions.first?.filters ?? 0
            for s in options.sparsities where s == 0 || !block.innerConvolutions.isEmpty {
                let id = "s\(Int((s * 100).rounded()))"
                guard !variants.contains(where: { $0.id == id }) else { continue }
                let into = ParameterStore()
                let variant = try GraphBlocks.variant(block, of: g, store: source.store, keep: 1 - s, into: into, prefix: "")
                graphs.append(try GraphSpec.Part(variant, store: into, prefix: GraphNetwork.prefix(position: p, variant: id), tensors: &tensors))
                variants.append(VariantSpec(id: id, sparsity: s, hiddenChannels: filters == 0 ? nil : max(1, Int((Double(filters) * (1 - s)).rounded())),
                                            skip: nil))
            }
            let sameShape = inShape == outShape
            if options.includeSkip {
                let into = ParameterStore()
                if let skip = try GraphBlocks.skipVariant(block, of: g, store: source.store, into: into, prefix: "") {
                    graphs.append(try GraphSpec.Part(skip, store: into, prefix: GraphNetwork.prefix(position: p, variant: "skip"), tensors: &tensors))
                    variants.append(VariantSpec(id: "skip", sparsity: 1, hiddenChannels: nil, skip: sameShape ? .identity : .shortcut))
                }
            }
            parts.append(graphs)
            positions.append(PositionSpec(name: "blocks.\(p)", kind: "graph", inChannels: inShape[0], outChannels: outShape[0], stride: stride,
                                          inputSize: [inShape[1], inShape[2]], hiddenChannels: filters,
                                          residual: block.residual ? (sameShape ? "identity" : "projection") : "none", variants: variants))
        }
        let architecture = Architecture(family: .graph, widths: nil, blocksPerStage: nil, stemWidth: nil, stages: nil, expansion: nil,
                                        inputShape: input, classes: source.classes, graph: GraphSpec(stem: stem, blocks: parts, head: headHidden))
        let net = try ElasticNetwork(architecture: architecture, positions: positions, adapterKind: options.adapterKind, seed: options.seed)
        for (name, t) in tensors { try net.model.store.set(name, try t.floats()) }
        progress(.detect, 1, 1)
        finish(.detect)

        // The original combination must compute what the source does.
        let probe = Array(0..<min(8, sourceImages.count))
        let engineInput = sourceImages.tensor(probe)
        let modelInput = modelTensor(sourceImages, probe, preprocessing)
        let expected = InferenceGraph(g, store: source.store).forward([modelInput])[0]
        let got = net.model.forward(engineInput, training: false)
        let difference = zip(expected.data, got.data).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }

        progress(.features, 0, 1)
        let features = Distillation.teacherFeatures(net, images: sourceImages)
        progress(.features, 1, 1)
        finish(.features)

        // Accuracy on labelled images, or agreement with the teacher: its own top-1 answers as labels.
        let evaluation: LabeledImages
        let labelled = validation?.labels != nil
        if let validation, labelled {
            evaluation = validation
        } else {
            var labels: [Int] = []
            labels.reserveCapacity(sourceImages.count)
            var start = 0
            while start < sourceImages.count {
                let idx = Array(start..<min(sourceImages.count, start + 64))
                let logits = net.model.forward(sourceImages.tensor(idx), training: false)
                for i in idx.indices {
                    let row = logits.data[(i * source.classes)..<((i + 1) * source.classes)]
                    labels.append(row.indices.max { row[$0] < row[$1] }! - i * source.classes)
                }
                start += 64
            }
            evaluation = LabeledImages(images: sourceImages.images, classLabels: ClassLabels(labels), count: sourceImages.count, channels: input[0],
                                       height: input[1], width: input[2])
        }

        let work = positions.reduce(0) { $0 + $1.variants.count - 1 }
        var done = 0
        var undistilled = positions.map { [Double](repeating: .nan, count: $0.variants.count) }
        let zero = [Int](repeating: 0, count: positions.count)
        net.compose(zero)
        let baseAccuracy = Trainer.accuracy(net.model, evaluation)
        progress(.distil, 0, work)
        for p in positions.indices {
            undistilled[p][0] = baseAccuracy
            for v in positions[p].variants.indices.dropFirst() {
                var choice = zero
                choice[p] = v
                net.compose(choice)
                undistilled[p][v] = Trainer.accuracy(net.model, evaluation)
                if positions[p].variants[v].skip != .identity {
                    positions[p].variants[v].distillation = Distillation.distil(
                        net, position: p, variant: v, features: features, steps: options.distillationSteps,
                        batchSize: options.distillationBatchSize, learningRate: options.distillationLearningRate,
                        seed: options.seed &+ UInt64(p * 16 + v))
                }
                done += 1
                progress(.distil, done, work)
            }
        }
        net.compose(zero)
        finish(.distil)

        let (stemProfile, headProfile, reference) = ElasticBuilder.profile(net, positions: &positions, image: sourceImages.tensor([0]),
                                                                          features: features, options: options, progress: progress)
        finish(.profile)

        let accuracy = ElasticBuilder.fitAccuracy(net, positions: positions, images: evaluation, options: options, progress: progress)
        finish(.accuracy)

        progress(.package, 0, 1)
        var manifest = PackageManifest(
            format: PackageManifest.formatName, formatVersion: PackageManifest.currentVersion, name: name,
            createdAt: ISO8601DateFormatter().string(from: Date()), builder: "fleetadapt model build --onnx",
            architecture: architecture,
            adapter: PackageManifest.Adapter(kind: options.adapterKind.rawValue, zeroInitialised: true),
            blocks: positions, stem: stemProfile, head: headProfile, reference: reference,
            accuracy: accuracy, combinationCount: net.combinationCount,
            provenance: PackageManifest.Provenance(
                dataset: dataset, sourceDomain: "source images", corruption: nil, baseModel: source.description,
                baseTrainImages: nil, baseTrainSteps: nil, cleanTestAccuracy: baseAccuracy,
                distillationImages: sourceImages.count, distillationSteps: options.distillationSteps,
                distillationBatchSize: options.distillationBatchSize, distillationLearningRate: Double(options.distillationLearningRate),
                distillationLoss: "mse", seed: options.seed),
            blobs: [])
        manifest.preprocessing = preprocessing
        manifest.classNames = classNames
        manifest.accuracyMetric = labelled ? "accuracy" : "teacher-agreement"
        let package = ElasticPackage(manifest: manifest, tensors: net.model.namedTensors())
        progress(.package, 1, 1)
        finish(.package)
        return (package, Report(blocks: blocks, originalMaxAbsDifference: difference, undistilledAccuracy: undistilled, seconds: seconds))
    }

    /// The head's nodes after the pool and its reshapes: the hidden classifier layers (a chain of gemms and
    /// element-wise ops on feature vectors, possibly none) and the final Gemm, which must compute the graph's output.
    static func classifier(_ g: Graph, head: [Int], shapes: [[Int]]) throws -> (hidden: [Int], dense: Dense, weight: Int, bias: Int?) {
        let found = head.map { g.nodes[$0].name }.joined(separator: ", ")
        func refuse() -> PackageError {
            .unsupported("the classifier after the last block must be a global average pool, then gemms with element-wise "
                         + "activations or dropout between them, ending in the Gemm that computes the logits; found " + found)
        }
        guard let first = head.first, let last = head.last, head.count >= 2, g.outputs[0] == g.inputCount + last,
              case .gemm(let dense, let w, let b) = g.nodes[last].op else { throw refuse() }
        switch g.nodes[first].op { case .globalAveragePool, .reduceMean: break; default: throw refuse() }
        var start = 1
        while start < head.count - 1 {
            switch g.nodes[head[start]].op { case .flatten, .reshape, .dropout, .identity: start += 1; continue; default: break }
            break
        }
        let chain = Array(head[start...])
        for (i, k) in chain.enumerated() {
            let node = g.nodes[k]
            guard node.inputs == [g.inputCount + (i == 0 ? head[start - 1] : chain[i - 1])] else { throw refuse() }
            switch node.op {
            case .gemm, .activation, .dropout, .identity: continue
            default: throw refuse()
            }
        }
        guard shapes[g.nodes[chain[0]].inputs[0]].count == 1 else { throw refuse() }
        return (Array(chain.dropLast()), dense, w, b)
    }

    /// The image channel (of an RGB or gray image) that model channel `o` reads: reversed for a BGR model.
    static func sourceChannel(_ o: Int, _ channels: Int, _ p: PackageManifest.InputPreprocessing) -> Int {
        p.channels == "bgr" ? channels - 1 - o : o
    }

    /// The model's own input for RGB (or gray) images: (pixel / 255 − mean[c]) / std[c], channels in the model's order.
    public static func modelTensor(_ images: LabeledImages, _ indices: [Int], _ p: PackageManifest.InputPreprocessing) -> Tensor {
        let plane = images.height * images.width, per = images.channels * plane
        var data = [Float](repeating: 0, count: indices.count * per)
        for (k, i) in indices.enumerated() {
            for j in 0..<per {
                let ch = j / plane, src = sourceChannel(ch, images.channels, p) * plane + j % plane
                data[k * per + j] = (Float(images.images[i * per + src]) / 255 - p.mean[ch]) / p.std[ch]
            }
        }
        return Tensor(shape: [indices.count, images.channels, images.height, images.width], data: data)
    }

    static func values(_ store: ParameterStore, _ id: Int) throws -> [Float] {
        let e = store.entries[id]
        let slab = e.isBuffer ? store.buffers : store.values
        return Array(slab[e.offset..<(e.offset + e.count)])
    }
}
