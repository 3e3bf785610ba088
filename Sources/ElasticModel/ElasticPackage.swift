import Crypto
import Foundation
import Learning

/// One file: a ustar archive holding `manifest.json` then `weights.safetensors` (every variant of every block,
/// the stem, the head and the zero-initialised adapter slots, under PyTorch-style names). The manifest records
/// the SHA-256 and size of the weights; decoding verifies the archive, the hash, the manifest and that the
/// weights fit the declared network exactly, before anything is used.
public struct ElasticPackage: Sendable {
    public static let manifestName = "manifest.json"
    public static let weightsName = "weights.safetensors"
    /// The default ceiling for reading a package (the coordinator has its own upload limit).
    public static let defaultMaxBytes = 256 << 20

    public var manifest: PackageManifest
    public var tensors: [String: SafeTensor]

    public init(manifest: PackageManifest, tensors: [String: SafeTensor]) {
        self.manifest = manifest
        self.tensors = tensors
    }

    /// The archive bytes; fills in the manifest's blob list from the weights it writes.
    public func encode() throws -> [UInt8] {
        let weights = SafeTensors.encode(tensors, metadata: ["format": "pt", "package": manifest.name])
        var m = manifest
        m.blobs = [PackageManifest.Blob(path: Self.weightsName, sha256: Self.hex(SHA256.hash(data: weights)), sizeBytes: weights.count)]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let manifestBytes = Array(try encoder.encode(m))
        return TarArchive.write([TarArchive.Entry(name: Self.manifestName, bytes: manifestBytes),
                                 TarArchive.Entry(name: Self.weightsName, bytes: weights)])
    }

    /// Verifies and decodes a package; every failure names what is wrong.
    public static func decode(_ bytes: [UInt8], maxBytes: Int = defaultMaxBytes) throws(PackageError) -> ElasticPackage {
        try decodeVerified(bytes, maxBytes: maxBytes).package
    }

    /// Verifies a package file and returns its network, built once (verification builds it anyway).
    public static func loadNetwork(path: String, maxBytes: Int = defaultMaxBytes) throws(PackageError) -> ElasticNetwork {
        try decodeVerified(try bytes(path: path, maxBytes: maxBytes), maxBytes: maxBytes).network
    }

    /// Every check, ending with the rebuilt network (the tensors must be exactly those of the declared network).
    static func decodeVerified(_ bytes: [UInt8], maxBytes: Int) throws(PackageError) -> (package: ElasticPackage, network: ElasticNetwork) {
        guard bytes.count <= maxBytes else { throw .tooLarge("\(bytes.count) bytes, the limit is \(maxBytes)") }
        let entries = try TarArchive.read(bytes)
        guard entries.map(\.name) == [manifestName, weightsName] else {
            throw .invalidArchive("expected exactly \(manifestName) then \(weightsName), found \(entries.map(\.name))")
        }
        let manifest: PackageManifest
        do { manifest = try JSONDecoder().decode(PackageManifest.self, from: Data(entries[0].bytes)) } catch {
            throw .invalidManifest("\(manifestName) does not decode: \(Self.describe(error))")
        }
        try manifest.validate()
        let weights = entries[1].bytes
        guard manifest.blobs.count == 1, let blob = manifest.blobs.first, blob.path == weightsName else {
            throw .invalidManifest("blobs: must list \(weightsName) alone")
        }
        guard blob.sizeBytes == weights.count else { throw .hashMismatch("\(weightsName): \(weights.count) bytes, the manifest says \(blob.sizeBytes)") }
        guard hex(SHA256.hash(data: weights)) == blob.sha256.lowercased() else {
            throw .hashMismatch("\(weightsName): SHA-256 differs from the manifest's (tampered or corrupted)")
        }
        let tensors: [String: SafeTensor]
        do { tensors = try SafeTensors.decode(weights).tensors } catch { throw .invalidArchive("\(weightsName): \(error)") }
        let package = ElasticPackage(manifest: manifest, tensors: tensors)
        return (package, try package.network())
    }

    public static func read(path: String, maxBytes: Int = defaultMaxBytes) throws(PackageError) -> ElasticPackage {
        try decode(try bytes(path: path, maxBytes: maxBytes), maxBytes: maxBytes)
    }

    /// A package file's bytes, refusing an oversized file before reading it.
    static func bytes(path: String, maxBytes: Int) throws(PackageError) -> [UInt8] {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = (attributes?[.size] as? NSNumber)?.intValue else { throw .invalidArchive("\(path): cannot read the file") }
        guard size <= maxBytes else { throw .tooLarge("\(path): \(size) bytes, the limit is \(maxBytes)") }
        guard let data = FileManager.default.contents(atPath: path) else { throw .invalidArchive("\(path): cannot read the file") }
        return Array(data)
    }

    /// Rebuilds the elastic network and loads every tensor; the tensor set must match the network exactly.
    public func network() throws(PackageError) -> ElasticNetwork {
        guard let kind = AdapterKind(rawValue: manifest.adapter.kind) else { throw .invalidManifest("adapter.kind: unknown") }
        let net = try ElasticNetwork(architecture: manifest.architecture, positions: manifest.blocks, adapterKind: kind)
        do { try net.model.load(tensors) } catch { throw .invalidManifest("weights: \(error)") }
        let expected = Set(net.model.store.entries.map(\.name))
        if let extra = tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw .invalidManifest("weights: tensor \(extra) is not part of the declared network")
        }
        return net
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx): return "missing \((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let ctx): return "malformed JSON \(ctx.debugDescription)"
        default: return "\(error)"
        }
    }
}
