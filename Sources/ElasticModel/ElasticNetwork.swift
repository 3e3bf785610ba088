import Learning

/// A network whose every block position holds several interchangeable variants, all in one parameter store,
/// with one residual adapter per position shared by its variants. `compose` picks one variant per position;
/// any combination is a valid network because every variant keeps its position's input and output shapes.
public final class ElasticNetwork {
    public let architecture: Architecture
    public let positions: [PositionSpec]
    public let adapterKind: AdapterKind
    /// Stem, head, the parameter store of every variant, and `blocks` = the current composition.
    public let model: Model
    /// `[position][variant]`, in the order of `positions[p].variants`.
    public let variantBlocks: [[Block]]
    public private(set) var choice: [Int]

    /// Builds the network with initial weights: variant `s0` of each position is the base block itself.
    public init(architecture: Architecture, positions: [PositionSpec], adapterKind: AdapterKind, seed: UInt64 = 0) throws(PackageError) {
        // Every shape is checked, and the network sized, by arithmetic before the first tensor is allocated.
        _ = try DeclaredNetwork(architecture: architecture, positions: positions, adapterKind: adapterKind)
        self.architecture = architecture
        self.positions = positions
        self.adapterKind = adapterKind
        if architecture.family == .graph, let spec = architecture.graph {
            // Declared and checked above; every variant is a graph block, its weights loaded afterwards.
            let built: (model: Model, variantBlocks: [[Block]])
            do {
                built = try GraphNetwork.build(spec, inputShape: architecture.inputShape, classes: architecture.classes,
                                               ids: positions.map { $0.variants.map(\.id) }, seed: seed)
            } catch let error as PackageError {
                throw error
            } catch {
                throw .invalidManifest(field: "architecture.graph", message: "\(error)")
            }
            var rng = SeededRandom(seed: seed &+ 1)
            for blocks in built.variantBlocks {
                blocks[0].attachAdapter(adapterKind, store: built.model.store, rng: &rng)
                for b in blocks.dropFirst() { b.shareAdapter(blocks[0].adapter, kind: blocks[0].adapterKind) }
            }
            model = built.model
            variantBlocks = built.variantBlocks
            choice = [Int](repeating: 0, count: positions.count)
            return
        }
        let model = architecture.makeModel(seed: seed)
        guard model.blocks.count == positions.count else {
            throw .invalidManifest(field: "blocks", message: "the architecture has \(model.blocks.count) block positions, the manifest \(positions.count)")
        }
        var rng = SeededRandom(seed: seed &+ 1)
        var all: [[Block]] = []
        for (p, (base, spec)) in zip(model.blocks, positions).enumerated() {
            let field = "blocks[\(p)]"
            guard spec.name == base.name, spec.inChannels == base.inChannels, spec.outChannels == base.outChannels, spec.stride == base.stride else {
                throw .invalidManifest(field: "\(field)", message: "\(spec.name) does not match the architecture's block \(base.name)")
            }
            guard !spec.variants.isEmpty, spec.variants.count <= 16, spec.variants[0].id == "s0" else {
                throw .invalidManifest(field: "\(field).variants", message: "1...16 variants, the first being s0 (the base block)")
            }
            guard Set(spec.variants.map(\.id)).count == spec.variants.count else { throw .invalidManifest(field: "\(field).variants", message: "duplicate ids") }
            base.attachAdapter(adapterKind, store: model.store, rng: &rng)
            var blocks = [base]
            for (v, variant) in spec.variants.enumerated().dropFirst() {
                let vfield = "\(field).variants[\(v)]"
                try variant.validateID(field: vfield)
                let name = "\(spec.name).\(variant.id)"
                let size = base.inputSize
                let block: Block
                switch (variant.skip, spec.kind) {
                case (.identity?, _):
                    guard base.residual, base.shortcut == nil, base.inChannels == base.outChannels, base.stride == 1 else {
                        throw .invalidManifest(field: "\(vfield).skip", message: "identity needs a block whose input and output shapes agree")
                    }
                    block = Block.skip(name: name, channels: base.outChannels, inputSize: size)
                case (.shortcut?, _):
                    guard base.shortcut != nil else { throw .invalidManifest(field: "\(vfield).skip", message: "the block has no projection shortcut") }
                    block = Block.shortcutOnly(model.store, name: name, in: base.inChannels, out: base.outChannels, stride: base.stride,
                                               inputSize: size, rng: &rng)
                case (nil, "basic"):
                    guard let h = variant.hiddenChannels, h >= 1, h <= spec.hiddenChannels else {
                        throw .invalidManifest(field: "\(vfield).hidden_channels", message: "must be in 1...\(spec.hiddenChannels)")
                    }
                    block = Block.basic(model.store, name: name, in: base.inChannels, out: base.outChannels, stride: base.stride,
                                        inputSize: size, hidden: h, rng: &rng)
                case (nil, "inverted-residual"):
                    guard let h = variant.hiddenChannels, h >= 1, h <= spec.hiddenChannels else {
                        throw .invalidManifest(field: "\(vfield).hidden_channels", message: "must be in 1...\(spec.hiddenChannels)")
                    }
                    block = Block.invertedResidual(model.store, name: name, in: base.inChannels, out: base.outChannels, stride: base.stride,
                                                   expansion: 1, inputSize: size, hidden: h, rng: &rng)
                default:
                    throw .invalidManifest(field: "\(field).kind", message: "unknown block kind \(spec.kind)")
                }
                block.shareAdapter(base.adapter, kind: base.adapterKind)
                blocks.append(block)
            }
            all.append(blocks)
        }
        self.model = model
        self.variantBlocks = all
        self.choice = [Int](repeating: 0, count: positions.count)
    }

    /// Derives the positions of a trained base model from the blocks `BlockDetection` finds in its graph:
    /// L1-pruned variants at each sparsity, plus `skip` where the block is residual.
    public static func positions(of model: Model, sparsities: [Double], includeSkip: Bool = true) throws(PackageError) -> [PositionSpec] {
        let detected = BlockDetection.detect(OpGraph(model: model)).blocks
        var out: [PositionSpec] = []
        for d in detected {
            guard d.modules.count == 1, let block = model.blocks.first(where: { $0.name == d.modules[0] }) else {
                throw .unsupported("block \(d.modules.joined(separator: "+")) spans several modules; deriving variants for it is not supported")
            }
            guard let first = block.convs.first else { throw .unsupported("block \(block.name) has no convolution to prune") }
            let hidden = first.outChannels
            let residual = block.shortcut != nil ? "projection" : (block.residual ? "identity" : "none")
            var variants: [VariantSpec] = []
            for s in sparsities {
                let h = max(1, Int((Double(hidden) * (1 - s)).rounded()))
                variants.append(VariantSpec(id: "s\(Int((s * 100).rounded()))", sparsity: s, hiddenChannels: h, skip: nil))
            }
            if includeSkip, residual != "none" {
                variants.append(VariantSpec(id: "skip", sparsity: 1, hiddenChannels: nil, skip: residual == "identity" ? .identity : .shortcut))
            }
            out.append(PositionSpec(name: block.name, kind: block.kind.rawValue, inChannels: block.inChannels, outChannels: block.outChannels,
                                    stride: block.stride, inputSize: [block.inputSize.0, block.inputSize.1], hiddenChannels: hidden,
                                    residual: residual, variants: variants))
        }
        return out
    }

    public var combinationCount: Int { variantBlocks.reduce(1) { $0 * $1.count } }

    /// Runs variant `choice[p]` at every position p.
    public func compose(_ choice: [Int]) {
        precondition(choice.count == positions.count && choice.indices.allSatisfy { variantBlocks[$0].indices.contains(choice[$0]) })
        self.choice = choice
        model.blocks = zip(variantBlocks, choice).map { $0[$1] }
    }

    /// Composes by variant ids (as configs name them), naming the position that is wrong.
    public func compose(ids: [String]) throws(PackageError) {
        guard ids.count == positions.count else { throw .invalidCombination("expected \(positions.count) variants, got \(ids.count)") }
        var c: [Int] = []
        for (p, id) in ids.enumerated() {
            guard let v = positions[p].variants.firstIndex(where: { $0.id == id }) else {
                throw .invalidCombination("\(positions[p].name) has no variant \(id)")
            }
            c.append(v)
        }
        compose(c)
    }

    public var choiceIDs: [String] { choice.enumerated().map { positions[$0].variants[$1].id } }

    /// Names of the tensors that belong to variant v of position p (its parameters and buffers).
    public func tensorNames(position p: Int, variant v: Int) -> [String] {
        let prefix = positions[p].variants[v].tensorPrefix(position: positions[p].name)
        let others = positions[p].variants.filter { $0.id != "s0" }.map { "\(positions[p].name).\($0.id)." }
        return model.store.entries.map(\.name).filter { name in
            guard name.hasPrefix(prefix), !name.hasPrefix(positions[p].name + ".adapter.") else { return false }
            // s0's prefix (`blocks.2.`) also covers the derived variants (`blocks.2.s50.`).
            return v != 0 || !others.contains { name.hasPrefix($0) }
        }
    }

    /// Names of the adapter tensors of position p.
    public func adapterTensorNames(position p: Int) -> [String] {
        model.store.entries.map(\.name).filter { $0.hasPrefix(positions[p].name + ".adapter.") }
    }
}
