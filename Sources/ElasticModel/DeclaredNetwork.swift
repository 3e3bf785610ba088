import Foundation
import Learning

/// The tensors (names and shapes) of the elastic network a manifest declares, computed by arithmetic alone, so a
/// package can be compared with its weights before anything is allocated: a 500 KB package that declares a
/// network of gigabytes is refused for what it declares, not after building it.
///
/// It mirrors what `Model.resnet`/`Model.mobileNetV2`, `Block` and `AdapterFactory` register, and checks every
/// structural rule `ElasticNetwork` relies on; `ElasticModelTests` holds it equal to the built network's store.
struct DeclaredNetwork {
    /// Name → shape (every tensor F32).
    private(set) var tensors: [String: [Int]] = [:]
    /// Float count of all tensors.
    private(set) var floatCount = 0

    private struct Base {
        let name: String, kind: String, inChannels: Int, outChannels: Int, stride: Int, inputSize: (Int, Int), hidden: Int
        var hasProjection: Bool { kind == "basic" && (stride != 1 || inChannels != outChannels) }
        var residual: Bool { kind == "basic" || (stride == 1 && inChannels == outChannels) }
    }

    init(architecture: Architecture, positions: [PositionSpec], adapterKind: AdapterKind) throws(PackageError) {
        try architecture.validate()
        if architecture.family == .graph {
            try declareGraph(architecture, positions: positions, adapterKind: adapterKind)
            return
        }
        // Stem and base blocks, as the architecture's constructor builds them.
        let inputChannels = architecture.inputShape[0]
        var size = (architecture.inputShape[1], architecture.inputShape[2])
        var bases: [Base] = []
        var c: Int
        switch architecture.family {
        case .resnet:
            let widths = architecture.widths ?? [], counts = architecture.blocksPerStage ?? []
            c = widths[0]
            try conv("stem.0", in: inputChannels, out: c, kernel: 3)
            try norm("stem.1", c)
            for (stage, (w, count)) in zip(widths, counts).enumerated() {
                for j in 0..<count {
                    let stride = stage > 0 && j == 0 ? 2 : 1
                    bases.append(Base(name: "blocks.\(bases.count)", kind: "basic", inChannels: c, outChannels: w, stride: stride,
                                      inputSize: size, hidden: w))
                    size = ((size.0 - 1) / stride + 1, (size.1 - 1) / stride + 1)
                    c = w
                }
            }
        case .mobilenetv2:
            c = architecture.stemWidth ?? 16
            let expansion = architecture.expansion ?? 4
            try conv("stem.0", in: inputChannels, out: c, kernel: 3)
            try norm("stem.1", c)
            for stage in architecture.stages ?? [] {
                for j in 0..<stage.blocks {
                    let stride = j == 0 ? stage.stride : 1
                    bases.append(Base(name: "blocks.\(bases.count)", kind: "inverted-residual", inChannels: c, outChannels: stage.channels,
                                      stride: stride, inputSize: size, hidden: c * expansion))
                    size = ((size.0 - 1) / stride + 1, (size.1 - 1) / stride + 1)
                    c = stage.channels
                }
            }
        case .graph:
            preconditionFailure("declared by declareGraph")
        }
        try add("head.weight", [architecture.classes, c])
        try add("head.bias", [architecture.classes])

        guard bases.count == positions.count else {
            throw .invalidManifest(field: "blocks", message: "the architecture has \(bases.count) block positions, the manifest \(positions.count)")
        }
        for (p, (base, spec)) in zip(bases, positions).enumerated() {
            let field = "blocks[\(p)]"
            guard spec.name == base.name, spec.inChannels == base.inChannels, spec.outChannels == base.outChannels, spec.stride == base.stride else {
                throw .invalidManifest(field: field, message: "\(spec.name) does not match the architecture's block \(base.name)")
            }
            guard spec.inputSize == [base.inputSize.0, base.inputSize.1] else {
                throw .invalidManifest(field: "\(field).input_size", message: "the architecture gives \([base.inputSize.0, base.inputSize.1])")
            }
            guard spec.hiddenChannels == base.hidden else {
                throw .invalidManifest(field: "\(field).hidden_channels", message: "the architecture's block has \(base.hidden)")
            }
            guard !spec.variants.isEmpty, spec.variants.count <= PackageLimits.maxVariants, spec.variants[0].id == "s0" else {
                throw .invalidManifest(field: "\(field).variants", message: "1...\(PackageLimits.maxVariants) variants, the first being s0 (the base block)")
            }
            guard Set(spec.variants.map(\.id)).count == spec.variants.count else {
                throw .invalidManifest(field: "\(field).variants", message: "duplicate ids")
            }
            try block(base.name, kind: base.kind, base, hidden: base.hidden)
            try adapter(base, adapterKind)
            for (v, variant) in spec.variants.enumerated().dropFirst() {
                let vfield = "\(field).variants[\(v)]"
                try variant.validateID(field: vfield)
                let name = "\(spec.name).\(variant.id)"
                switch (variant.skip, spec.kind) {
                case (.identity?, _):
                    guard base.residual, !base.hasProjection, base.inChannels == base.outChannels, base.stride == 1 else {
                        throw .invalidManifest(field: "\(vfield).skip", message: "identity needs a block whose input and output shapes agree")
                    }
                case (.shortcut?, _):
                    guard base.hasProjection else { throw .invalidManifest(field: "\(vfield).skip", message: "the block has no projection shortcut") }
                    try projection(name, base)
                case (nil, "basic"), (nil, "inverted-residual"):
                    guard let h = variant.hiddenChannels, h >= 1, h <= spec.hiddenChannels else {
                        throw .invalidManifest(field: "\(vfield).hidden_channels", message: "must be in 1...\(spec.hiddenChannels)")
                    }
                    try block(name, kind: spec.kind, base, hidden: h)
                default:
                    throw .invalidManifest(field: "\(field).kind", message: "unknown block kind \(spec.kind)")
                }
            }
        }
    }

    /// The graph family: every part checked (ops, bounds, shapes) and its tensors declared from where its nodes sit;
    /// the block positions must state the shapes the graph gives.
    private mutating func declareGraph(_ architecture: Architecture, positions: [PositionSpec], adapterKind: AdapterKind) throws(PackageError) {
        guard let spec = architecture.graph else { throw .invalidManifest(field: "architecture.graph", message: "missing") }
        guard spec.blocks.count == positions.count else {
            throw .invalidManifest(field: "blocks", message: "the graph has \(spec.blocks.count) block positions, the manifest \(positions.count)")
        }
        for (p, position) in positions.enumerated() {
            let field = "blocks[\(p)]"
            guard position.name == "blocks.\(p)" else { throw .invalidManifest(field: "\(field).name", message: "must be blocks.\(p)") }
            guard position.kind == "graph" else { throw .invalidManifest(field: "\(field).kind", message: "must be graph in a graph package") }
            guard !position.variants.isEmpty, position.variants.count <= PackageLimits.maxVariants, position.variants[0].id == "s0" else {
                throw .invalidManifest(field: "\(field).variants", message: "1...\(PackageLimits.maxVariants) variants, the first being s0 (the base block)")
            }
            guard Set(position.variants.map(\.id)).count == position.variants.count else {
                throw .invalidManifest(field: "\(field).variants", message: "duplicate ids")
            }
            guard spec.blocks[p].count == position.variants.count else {
                throw .invalidManifest(field: "architecture.graph.blocks[\(p)]", message: "\(spec.blocks[p].count) graphs for \(position.variants.count) variants")
            }
            for (v, variant) in position.variants.enumerated() { try variant.validateID(field: "\(field).variants[\(v)]") }
        }
        let checked = try GraphNetwork.check(spec, inputShape: architecture.inputShape, classes: architecture.classes,
                                             ids: positions.map { $0.variants.map(\.id) })
        for (name, shape) in checked.tensors { try add(name, shape) }
        for (p, (position, shapes)) in zip(positions, checked.positions).enumerated() {
            let field = "blocks[\(p)]"
            guard position.inChannels == shapes.input[0], position.outChannels == shapes.output[0], position.stride == shapes.stride,
                  position.inputSize == Array(shapes.input[1...]) else {
                throw .invalidManifest(field: field, message: "the graph gives input \(shapes.input), output \(shapes.output), stride \(shapes.stride)")
            }
            try adapter(Base(name: position.name, kind: "graph", inChannels: shapes.input[0], outChannels: shapes.output[0], stride: shapes.stride,
                             inputSize: (shapes.input[1], shapes.input[2]), hidden: position.hiddenChannels), adapterKind)
        }
    }

    /// A variant's (or the base block's) own tensors: `Block.basic` or `Block.invertedResidual` (expansion 1 for
    /// derived inverted residuals: only `hidden` matters).
    private mutating func block(_ name: String, kind: String, _ base: Base, hidden h: Int) throws(PackageError) {
        let (c, o) = (base.inChannels, base.outChannels)
        if kind == "basic" {
            try conv(name + ".conv1", in: c, out: h, kernel: 3)
            try norm(name + ".bn1", h)
            try conv(name + ".conv2", in: h, out: o, kernel: 3)
            try norm(name + ".bn2", o)
            if base.stride != 1 || c != o { try projection(name, base) }
        } else {
            try conv(name + ".expand", in: c, out: h, kernel: 1)
            try norm(name + ".bn1", h)
            try conv(name + ".depthwise", in: h, out: h, kernel: 3, groups: h)
            try norm(name + ".bn2", h)
            try conv(name + ".project", in: h, out: o, kernel: 1)
            try norm(name + ".bn3", o)
        }
    }

    private mutating func projection(_ name: String, _ base: Base) throws(PackageError) {
        try conv(name + ".shortcut.0", in: base.inChannels, out: base.outChannels, kernel: 1)
        try norm(name + ".shortcut.1", base.outChannels)
    }

    private mutating func adapter(_ base: Base, _ kind: AdapterKind) throws(PackageError) {
        let name = base.name + ".adapter"
        switch kind {
        case .parallel:
            try conv(name + ".conv", in: base.inChannels, out: base.outChannels, kernel: 1)
        case .liteResidual:
            try conv(name + ".group_conv", in: base.inChannels, out: base.inChannels, kernel: 3, groups: Self.gcd(base.inChannels, 8))
            try conv(name + ".project", in: base.inChannels, out: base.outChannels, kernel: 1)
        }
    }

    private mutating func conv(_ name: String, in c: Int, out o: Int, kernel k: Int, groups: Int = 1) throws(PackageError) {
        try add(name + ".weight", [o, c / groups, k, k])
    }

    private mutating func norm(_ name: String, _ channels: Int) throws(PackageError) {
        for t in ["weight", "bias", "running_mean", "running_var"] { try add("\(name).\(t)", [channels]) }
    }

    private mutating func add(_ name: String, _ shape: [Int]) throws(PackageError) {
        // Every dimension is bounded by the architecture's limits (≤ 8192), so the products cannot overflow.
        guard tensors.updateValue(shape, forKey: name) == nil else {
            throw .invalidManifest(field: "blocks", message: "tensor \(name) would be declared twice")
        }
        floatCount += shape.reduce(1, *)
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    /// Compares the declared tensors with a weights file's header: every name present, F32, of the declared shape,
    /// and nothing else.
    func check(_ header: WeightsHeader) throws(PackageError) {
        for (name, shape) in tensors.sorted(by: { $0.key < $1.key }) {
            guard let entry = header.entries[name] else { throw .invalidWeights("weights lack \(name) (declared \(shape))") }
            guard entry.dtype == "F32", entry.shape == shape else {
                throw .invalidWeights("\(name): the manifest declares F32 \(shape), the weights hold \(entry.dtype) \(entry.shape)")
            }
        }
        if let extra = header.entries.keys.sorted().first(where: { tensors[$0] == nil }) {
            throw .invalidWeights("tensor \(extra) is not part of the declared network")
        }
    }
}

/// The tensor table of a safetensors file, read from its header alone (8-byte length, JSON), never its data.
struct WeightsHeader {
    struct Entry: Decodable {
        let dtype: String
        let shape: [Int]
        enum CodingKeys: String, CodingKey { case dtype, shape }
    }

    let entries: [String: Entry]

    private struct Table: Decodable {
        var entries: [String: Entry] = [:]
        struct Key: CodingKey {
            let stringValue: String
            init(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            for key in c.allKeys where key.stringValue != "__metadata__" { entries[key.stringValue] = try c.decode(Entry.self, forKey: key) }
        }
    }

    /// - Parameter maxHeaderBytes: the header is parsed as a JSON tree, so it is bounded by what the declared
    ///   network needs, not by the file.
    init(_ bytes: [UInt8], maxHeaderBytes: Int) throws(PackageError) {
        let file = ElasticPackage.weightsName
        guard bytes.count >= 8 else { throw .invalidArchive("\(file): shorter than its 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderBytes) else {
            throw .invalidWeights("the safetensors header is \(n) bytes; the declared network needs at most \(maxHeaderBytes)")
        }
        guard n <= UInt64(bytes.count - 8) else { throw .invalidArchive("\(file): header length \(n) runs past the end (truncated?)") }
        do {
            entries = try JSONDecoder().decode(Table.self, from: Data(bytes[8..<(8 + Int(n))])).entries
        } catch {
            throw .invalidArchive("\(file): the header is not safetensors JSON")
        }
    }
}
