import Learning

/// Which tensors adaptation may change, and their shapes: the position adapters (shared by every variant of a
/// position, so every combination has them all) and the batch norms (affine parameters and running statistics) of
/// the blocks a combination runs, plus the stem's. It is what a device's artifact may hold for its combination and
/// what an aggregated domain adapter may install; anything else (convolutions, the head, other variants' norms) is
/// frozen. Read-only: built from a network's parameter store, it never changes the network.
public struct AdaptationLayout: Sendable, Equatable {
    /// Tensors of every combination: every position's adapter and the stem's batch norm, by name.
    public let shared: [String: [Int]]
    /// `[position][variant]`: the batch-norm tensors of that variant, by name.
    public let variants: [[[String: [Int]]]]
    /// `[position][variant]`: the variant ids, in the package's order.
    public let variantIDs: [[String]]

    /// The layout of `network`'s every position and variant, whatever it is composed with now.
    public init(network: ElasticNetwork) {
        let store = network.model.store
        func shapes(of norms: [BatchNorm2d]) -> [String: [Int]] {
            var out: [String: [Int]] = [:]
            for bn in norms {
                for suffix in ["weight", "bias", "running_mean", "running_var"] {
                    let name = "\(bn.name).\(suffix)"
                    if let e = store.entry(name) { out[name] = e.shape }
                }
            }
            return out
        }
        var shared = shapes(of: network.model.stemNorms)
        for p in network.positions.indices {
            for name in network.adapterTensorNames(position: p) { shared[name] = store.entry(name)?.shape }
        }
        self.shared = shared
        var variants: [[[String: [Int]]]] = []
        for blocks in network.variantBlocks {
            var position: [[String: [Int]]] = []
            for block in blocks {
                let shortcutNorms: [BatchNorm2d] = block.shortcut?.layers.compactMap { $0 as? BatchNorm2d } ?? []
                position.append(shapes(of: block.norms + shortcutNorms))
            }
            variants.append(position)
        }
        self.variants = variants
        variantIDs = network.positions.map { $0.variants.map(\.id) }
    }

    /// The layout of a package's declared network, built from its manifest alone (fresh weights, never loaded).
    public init(architecture: Architecture, positions: [PositionSpec], adapterKind: AdapterKind) throws(PackageError) {
        self.init(network: try ElasticNetwork(architecture: architecture, positions: positions, adapterKind: adapterKind))
    }

    /// Name → shape of the tensors adaptation of the combination `ids` (one variant id per position) may change.
    public func tensors(for ids: [String]) throws(PackageError) -> [String: [Int]] {
        guard ids.count == variantIDs.count else { throw .invalidCombination("expected \(variantIDs.count) variants, got \(ids.count)") }
        var out = shared
        for (p, id) in ids.enumerated() {
            guard let v = variantIDs[p].firstIndex(of: id) else { throw .invalidCombination("block position \(p) has no variant \(id)") }
            out.merge(variants[p][v]) { a, _ in a }
        }
        return out
    }

    /// The combination of the original blocks (`s0` everywhere): what a device runs when no plan names variants.
    public var originalCombination: [String] { variantIDs.map { $0[0] } }

    /// Name → shape of every tensor any combination may adapt.
    public var allTensors: [String: [Int]] {
        var out = shared
        for position in variants { for variant in position { out.merge(variant) { a, _ in a } } }
        return out
    }
}
