import Learning

/// L1-norm filter pruning (Li et al., 2017) that keeps a block's input and output shapes: the filters of the
/// block's first convolution with the smallest L1 norms are removed, with their normalisation channels and the
/// matching input channels of the next layer; the last convolution on the output path stays whole.
public enum FilterPruning {
    /// Indices of the `keep` filters with the largest L1 norm, in ascending order (ties keep the lower index).
    public static func keptFilters(weights: [Float], filters: Int, keep: Int) -> [Int] {
        let per = weights.count / filters
        let norms = (0..<filters).map { f in (0..<per).reduce(Float(0)) { $0 + abs(weights[f * per + $1]) } }
        let order = (0..<filters).sorted { norms[$0] != norms[$1] ? norms[$0] > norms[$1] : $0 < $1 }
        return order.prefix(keep).sorted()
    }

    /// Initialises `variant` from `base` (same position): pruned copies for narrower variants, the projection
    /// shortcut for shortcut-only skips, nothing for identity skips.
    public static func initialise(_ variant: Block, from base: Block, store: ParameterStore) throws {
        if variant.kind == .skip {
            if let vs = variant.shortcut, let bs = base.shortcut { try copyLayers(from: bs.layers, to: vs.layers, store: store) }
            return
        }
        guard variant.kind == base.kind, let first = base.convs.first, let vfirst = variant.convs.first else {
            throw LearningError("\(variant.name): cannot be initialised from \(base.name)")
        }
        let w = store.tensor(first.name + ".weight")!.data
        let kept = keptFilters(weights: w, filters: first.outChannels, keep: vfirst.outChannels)
        switch base.kind {
        case .basic:
            // conv1 filters, bn1 channels, conv2 input channels; bn2 and the shortcut unchanged.
            try selectRows(first.name + ".weight", into: vfirst.name + ".weight", rows: kept, store: store)
            try selectChannels(base.norms[0], into: variant.norms[0], kept: kept, store: store)
            try selectColumns(base.convs[1].name + ".weight", into: variant.convs[1].name + ".weight", outer: base.convs[1].outChannels,
                              inner: first.outChannels, kept: kept, store: store)
            try copyLayers(from: [base.norms[1]], to: [variant.norms[1]], store: store)
            if let bs = base.shortcut, let vs = variant.shortcut { try copyLayers(from: bs.layers, to: vs.layers, store: store) }
        case .invertedResidual:
            // expand filters, bn1, depthwise filters, bn2, project input channels; bn3 unchanged.
            try selectRows(first.name + ".weight", into: vfirst.name + ".weight", rows: kept, store: store)
            try selectChannels(base.norms[0], into: variant.norms[0], kept: kept, store: store)
            try selectRows(base.convs[1].name + ".weight", into: variant.convs[1].name + ".weight", rows: kept, store: store)
            try selectChannels(base.norms[1], into: variant.norms[1], kept: kept, store: store)
            try selectColumns(base.convs[2].name + ".weight", into: variant.convs[2].name + ".weight", outer: base.convs[2].outChannels,
                              inner: first.outChannels, kept: kept, store: store)
            try copyLayers(from: [base.norms[2]], to: [variant.norms[2]], store: store)
        case .skip, .graph:
            // Graph blocks never get here (no `convs`): their variants are cut pruned out of the graph by GraphBlocks.
            break
        }
    }

    static func selectRows(_ from: String, into to: String, rows: [Int], store: ParameterStore) throws {
        let t = store.tensor(from)!
        let per = t.count / t.shape[0]
        var out: [Float] = []
        out.reserveCapacity(rows.count * per)
        for r in rows { out += t.data[(r * per)..<((r + 1) * per)] }
        try store.set(to, out)
    }

    /// Keeps input channels `kept` of a (outer, inner, k, k) weight.
    static func selectColumns(_ from: String, into to: String, outer: Int, inner: Int, kept: [Int], store: ParameterStore) throws {
        let t = store.tensor(from)!
        let per = t.count / (outer * inner)
        var out: [Float] = []
        out.reserveCapacity(outer * kept.count * per)
        for o in 0..<outer { for i in kept { out += t.data[((o * inner + i) * per)..<((o * inner + i + 1) * per)] } }
        try store.set(to, out)
    }

    static func selectChannels(_ from: BatchNorm2d, into to: BatchNorm2d, kept: [Int], store: ParameterStore) throws {
        for suffix in [".weight", ".bias", ".running_mean", ".running_var"] {
            let t = store.tensor(from.name + suffix)!
            try store.set(to.name + suffix, kept.map { t.data[$0] })
        }
    }

    static func copyLayers(from: [Layer], to: [Layer], store: ParameterStore) throws {
        for (a, b) in zip(from, to) {
            switch (a, b) {
            case let (x as Conv2d, y as Conv2d):
                try store.set(y.name + ".weight", store.tensor(x.name + ".weight")!.data)
            case let (x as BatchNorm2d, y as BatchNorm2d):
                for s in [".weight", ".bias", ".running_mean", ".running_var"] { try store.set(y.name + s, store.tensor(x.name + s)!.data) }
            default:
                break
            }
        }
    }
}
