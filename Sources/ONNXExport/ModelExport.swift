import ElasticModel
import Foundation
import Learning

/// Why an export was refused, naming what is wrong (the block, the variant, the tensor, the split point).
public struct ONNXExportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Which graph of a combination to write: the whole network, or one side of a split after block K.
public enum ExportPart: String, Sendable, CaseIterable {
    case whole
    /// Input → the features after block K (output `features`): what the device runs.
    case device
    /// The features after block K (input `features`) → logits: what the edge server runs.
    case edge
}

/// One elastic package's combination (variants, adapters and batch-norm statistics) as a standalone ONNX model:
/// the network is composed and adapted here, lowered to the engine's `Graph` (the graph the engine itself runs),
/// and written node for node, so onnxruntime computes what FleetAdapt computes.
public struct ModelExport {
    public static let inputName = "input"
    public static let outputName = "logits"
    /// The cut tensor of a split export: the device part's output and the edge part's input.
    public static let featuresName = "features"

    public let network: ElasticNetwork
    public let manifest: PackageManifest

    /// Rebuilds the package's network, composed of its original blocks (`s0` everywhere), adapters at zero.
    public init(package: ElasticPackage) throws {
        network = try package.network()
        manifest = package.manifest
    }

    /// An already built network and the manifest it came from (e.g. one a device has adapted in place).
    public init(network: ElasticNetwork, manifest: PackageManifest) {
        self.network = network
        self.manifest = manifest
    }

    /// Composes the network: `variants` maps block names (`blocks.2`) to variant ids; blocks not named keep `s0`.
    public func compose(_ variants: [String: String]) throws {
        let names = network.positions.map(\.name)
        for block in variants.keys.sorted() where !names.contains(block) {
            throw ONNXExportError("unknown block \(block): the package has \(names.joined(separator: ", "))")
        }
        var ids: [String] = []
        for position in network.positions {
            let id = variants[position.name] ?? position.variants[0].id
            guard position.variants.contains(where: { $0.id == id }) else {
                throw ONNXExportError("block \(position.name) has no variant \(id): it has \(position.variants.map(\.id).joined(separator: ", "))")
            }
            ids.append(id)
        }
        try network.compose(ids: ids)
    }

    /// Parses `blocks.0=s0,blocks.1=s50`.
    public static func parseVariants(_ text: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ONNXExportError("--variants: \(item) is not block=variant (e.g. blocks.1=s50)")
            }
            let block = String(parts[0]).trimmingCharacters(in: .whitespaces)
            guard out[block] == nil else { throw ONNXExportError("--variants: block \(block) is named twice") }
            out[block] = String(parts[1]).trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    /// Installs adapted tensors (a device's artifact or a domain's aggregate: adapters and batch norms) into the
    /// composed network. Every tensor must be an adapter or batch-norm tensor of this package with its shape, F32 and
    /// finite; the whole file is refused otherwise, before anything is installed. Norms of variants the combination
    /// does not run are ignored (an aggregate holds every combination's).
    public func install(adapters tensors: [String: SafeTensor]) throws {
        let layout = AdaptationLayout(network: network)
        let mine = try layout.tensors(for: network.choiceIDs), any = layout.allTensors
        var install: [(String, [Float])] = []
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            guard let shape = any[name] else {
                throw ONNXExportError("adapters: \(name) is not an adapter or batch-norm tensor of package \(manifest.name) (adapters of another model?)")
            }
            guard tensor.dtype == .F32 else { throw ONNXExportError("adapters: \(name) is \(tensor.dtype.rawValue), expected F32") }
            guard tensor.shape == shape else {
                throw ONNXExportError("adapters: \(name) has shape \(tensor.shape), package \(manifest.name)'s is \(shape) (adapters of another model?)")
            }
            let values = try tensor.floats()
            guard values.allSatisfy(\.isFinite) else { throw ONNXExportError("adapters: \(name) holds a value that is not finite") }
            if mine[name] != nil { install.append((name, values)) }
        }
        for (name, values) in install { try network.model.store.set(name, values) }
    }

    /// Reads a safetensors file of adapted tensors and installs it.
    public func install(adaptersFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ONNXExportError("adapters: cannot read \(path)") }
        let tensors: [String: SafeTensor]
        do { tensors = try SafeTensors.decode(Array(data)).tensors } catch {
            throw ONNXExportError("adapters: \(path) is not a safetensors file: \(error)")
        }
        try install(adapters: tensors)
    }

    /// Valid split points: after the stem (−1) through after the last block.
    public var splitRange: ClosedRange<Int> { -1...(network.positions.count - 1) }

    /// The ONNX file of the composed network (or one part of it split after block `splitAfterBlock`).
    public func onnx(part: ExportPart = .whole, splitAfterBlock: Int? = nil) throws -> [UInt8] {
        let model = network.model
        let chw = model.inputShape
        let graphPart: ONNXGraphWriter.Part
        switch (part, splitAfterBlock) {
        case (.whole, nil):
            let g = try model.graph()
            graphPart = .init(graph: g, nodeCount: g.nodes.count, output: g.outputs[0], inputShape: chw, inputName: Self.inputName,
                              outputName: Self.outputName, graphName: manifest.name)
        case (.whole, _?): throw ONNXExportError("--split-after-block needs --part device or --part edge")
        case (_, nil): throw ONNXExportError("--part \(part.rawValue) needs --split-after-block")
        case (.device, let k?):
            try checkSplit(k)
            // The whole graph of the blocks up to k, cut before its pool: stem and blocks 0...k, in engine order.
            let all = model.blocks
            model.blocks = Array(all.prefix(k + 1))
            defer { model.blocks = all }
            let g = try model.graph()
            guard let pool = g.nodes.firstIndex(where: { $0.name == "pool" }) else { throw ONNXExportError("the lowered graph has no pool") }
            graphPart = .init(graph: g, nodeCount: pool, output: g.nodes[pool].inputs[0], inputShape: chw, inputName: Self.inputName,
                              outputName: Self.featuresName, graphName: manifest.name + ".device")
        case (.edge, let k?):
            try checkSplit(k)
            let g = try model.graph(after: k)
            graphPart = .init(graph: g, nodeCount: g.nodes.count, output: g.outputs[0], inputShape: model.featureShape(after: k),
                              inputName: Self.featuresName, outputName: Self.outputName, graphName: manifest.name + ".edge")
        }
        return try ONNXGraphWriter.model(graphPart, store: model.store, metadata: metadata(part: part, splitAfterBlock: splitAfterBlock),
                                         producerVersion: "1")
    }

    func checkSplit(_ k: Int) throws {
        guard splitRange.contains(k) else {
            throw ONNXExportError("split point \(k) is outside the network: --split-after-block takes \(splitRange.lowerBound) (after the stem) "
                                  + "to \(splitRange.upperBound) (after \(network.positions.last!.name))")
        }
    }

    /// `metadata_props`: where the model came from and how an application feeds it and reads its answer.
    func metadata(part: ExportPart, splitAfterBlock: Int?) -> [(String, String)] {
        let a = manifest.architecture
        let fashion = manifest.provenance.dataset.lowercased().contains("fashion")
        let classes = manifest.classNames
            ?? (fashion && a.classes == FashionMNIST.classNames.count ? FashionMNIST.classNames : (0..<a.classes).map { "class_\($0)" })
        // The engine's Fashion-MNIST normalisation (`LabeledImages.tensor`): x = (pixel / 255 − mean) / std, NCHW. A graph
        // package's own mean and std are applied by the network's first node, so this holds for it too.
        let channels = a.inputShape[0]
        let preprocessing = Preprocessing(inputShape: a.inputShape, color: channels == 1 ? "grayscale" : "rgb",
                                          mean: [Double](repeating: 0.2860, count: channels), std: [Double](repeating: 0.3530, count: channels))
        func json<T: Encodable>(_ value: T) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        var out: [(String, String)] = [
            ("fleetadapt.package", manifest.name),
            ("fleetadapt.architecture", a.family.rawValue),
            ("fleetadapt.variants", zip(network.positions, network.choiceIDs).map { "\($0.name)=\($1)" }.joined(separator: ",")),
            ("fleetadapt.adapter_kind", network.adapterKind.rawValue),
            ("fleetadapt.part", part.rawValue),
            ("preprocessing", json(preprocessing)),
            ("class_names", json(classes)),
        ]
        if let k = splitAfterBlock { out.append(("fleetadapt.split_after_block", String(k))) }
        return out
    }

    /// How an application makes the model's input from an image (`metadata_props["preprocessing"]`).
    struct Preprocessing: Encodable {
        var layout = "NCHW"
        var inputShape: [Int]
        var color: String
        var scale = 1.0 / 255
        var mean: [Double]
        var std: [Double]
        var formula = "x = (pixel * scale - mean) / std"
        enum CodingKeys: String, CodingKey {
            case layout, color, scale, mean, std, formula
            case inputShape = "input_shape"
        }
    }

    /// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename; the temporary file is removed
    /// on any failure, so a reader of `path` finds the old file or the whole new one, never a part.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let temp = "\(dir)/.\(url.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ONNXExportError("cannot create \(temp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer { if !ok { unlink(temp) } }
        var written = 0
        let failure: String? = bytes.withUnsafeBytes { raw -> String? in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return "write \(temp): \(String(cString: strerror(errno)))" }
                written += n
            }
            return fsync(fd) == 0 ? nil : "fsync \(temp): \(String(cString: strerror(errno)))"
        }
        close(fd)
        if let failure { throw ONNXExportError(failure) }
        guard rename(temp, path) == 0 else { throw ONNXExportError("rename to \(path): \(String(cString: strerror(errno)))") }
        ok = true
        // The rename itself reaches the disk with the directory.
        let dfd = open(dir, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}
