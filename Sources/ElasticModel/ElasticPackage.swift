import Crypto
import Foundation
import Learning

/// One file: a ustar archive holding `manifest.sha256`, `manifest.json` then `weights.safetensors` (every variant
/// of every block, the stem, the head and the zero-initialised adapter slots, under PyTorch-style names).
///
/// The digests form a chain: `manifest.sha256` (in `sha256sum` form, so `sha256sum -c manifest.sha256` checks an
/// extracted package) holds the SHA-256 of `manifest.json`, and the manifest holds the SHA-256 and size of the
/// weights. Decoding verifies the archive, both digests, every manifest field's range, and the weights' header
/// against the network the manifest declares, all before any tensor is allocated; then it builds the network.
/// The digests catch corruption and edits; they are not a signature (whoever can rewrite the manifest can rewrite
/// its digest): who may publish is decided by the coordinator's admin key.
public struct ElasticPackage: Sendable {
    public static let digestName = "manifest.sha256"
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

    /// The archive bytes; fills in the manifest's blob list from the weights it writes, and its digest.
    public func encode() throws -> [UInt8] {
        let weights = SafeTensors.encode(tensors, metadata: ["format": "pt", "package": manifest.name])
        var m = manifest
        m.blobs = [PackageManifest.Blob(path: Self.weightsName, sha256: Self.hex(SHA256.hash(data: weights)), sizeBytes: weights.count)]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let manifestBytes = Array(try encoder.encode(m))
        return Self.archive(manifest: manifestBytes, weights: weights)
    }

    /// The archive of these manifest bytes (with their digest file) and weights; for tools and tests that write a
    /// manifest of their own.
    public static func archive(manifest: [UInt8], weights: [UInt8]) -> [UInt8] {
        TarArchive.write([TarArchive.Entry(name: digestName, bytes: digestFile(manifest)),
                          TarArchive.Entry(name: manifestName, bytes: manifest),
                          TarArchive.Entry(name: weightsName, bytes: weights)])
    }

    /// `manifest.sha256`: one `sha256sum` line.
    static func digestFile(_ manifest: [UInt8]) -> [UInt8] {
        Array("\(hex(SHA256.hash(data: manifest)))  \(manifestName)\n".utf8)
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
    ///
    /// Memory: until the weights' header has matched the declared network, nothing larger than the package itself
    /// is allocated (the archive's entries, the manifest's JSON tree within `PackageLimits.maxManifestBytes`, the
    /// header's within what the declared network needs); the network is built only once the weights fit it.
    static func decodeVerified(_ bytes: [UInt8], maxBytes: Int) throws(PackageError) -> (package: ElasticPackage, network: ElasticNetwork) {
        guard bytes.count <= maxBytes else { throw .tooLarge("\(bytes.count) bytes, the limit is \(maxBytes)") }
        let entries = try TarArchive.read(bytes)
        let names = entries.map(\.name)
        if names == [manifestName, weightsName] {
            throw .unsupported("a format 1 package: it has no \(digestName), so its manifest is not covered by a digest; rebuild it with `fleetadapt model build`")
        }
        guard names == [digestName, manifestName, weightsName] else {
            throw .invalidArchive("expected exactly \(digestName), \(manifestName) then \(weightsName), found \(names)")
        }
        let manifestBytes = entries[1].bytes
        guard manifestBytes.count <= PackageLimits.maxManifestBytes else {
            throw .tooLarge("\(manifestName): \(manifestBytes.count) bytes, the limit is \(PackageLimits.maxManifestBytes)")
        }
        guard let expected = parseDigestFile(entries[0].bytes) else {
            throw .invalidArchive("\(digestName): must be one line `<64 hex digits>  \(manifestName)`")
        }
        guard hex(SHA256.hash(data: manifestBytes)) == expected else {
            throw .hashMismatch(file: manifestName, message: "SHA-256 differs from \(digestName) (tampered or corrupted)")
        }
        let manifest: PackageManifest
        do { manifest = try JSONDecoder().decode(PackageManifest.self, from: Data(manifestBytes)) } catch {
            throw Self.manifestError(error, manifestBytes)
        }
        try manifest.validate()
        let weights = entries[2].bytes
        guard manifest.blobs.count == 1, let blob = manifest.blobs.first, blob.path == weightsName else {
            throw .invalidManifest(field: "blobs", message: "must list \(weightsName) alone")
        }
        guard blob.sizeBytes == weights.count else {
            throw .hashMismatch(file: weightsName, message: "\(weights.count) bytes, the manifest says \(blob.sizeBytes)")
        }
        guard hex(SHA256.hash(data: weights)) == blob.sha256.lowercased() else {
            throw .hashMismatch(file: weightsName, message: "SHA-256 differs from the manifest's (tampered or corrupted)")
        }
        guard let kind = AdapterKind(rawValue: manifest.adapter.kind) else { throw .invalidManifest(field: "adapter.kind", message: "unknown") }
        let declared = try DeclaredNetwork(architecture: manifest.architecture, positions: manifest.blocks, adapterKind: kind)
        try declared.check(try WeightsHeader(weights, maxHeaderBytes: 65_536 + 512 * declared.tensors.count))
        let tensors: [String: SafeTensor]
        do { tensors = try SafeTensors.decode(weights).tensors } catch { throw .invalidArchive("\(weightsName): \(error)") }
        let package = ElasticPackage(manifest: manifest, tensors: tensors)
        return (package, try package.network())
    }

    /// The digest a `manifest.sha256` names, lower-case; nil unless it is exactly one `sha256sum` line for the manifest.
    static func parseDigestFile(_ bytes: [UInt8]) -> String? {
        guard bytes.count <= 256, let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let line = text.hasSuffix("\n") ? String(text.dropLast()) : text
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].isEmpty, parts[2] == manifestName, parts[0].count == 64,
              parts[0].allSatisfy(\.isHexDigit) else { return nil }
        return parts[0].lowercased()
    }

    /// A manifest that does not decode, named by the JSON path of the value at fault.
    static func manifestError(_ error: Error, _ bytes: [UInt8]) -> PackageError {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for k in keys {
                if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
            }
            return out.isEmpty ? "$" : out
        }
        switch error {
        case DecodingError.keyNotFound(let key, let ctx): return .invalidManifest(field: path(ctx.codingPath + [key]), message: "missing")
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return .invalidManifest(field: path(ctx.codingPath), message: "wrong type")
        case DecodingError.dataCorrupted(let ctx) where !ctx.codingPath.isEmpty:
            return .invalidManifest(field: path(ctx.codingPath), message: "not a valid value")
        default:
            // The decoder refuses a number too large for any integer type as invalid JSON, without a path; find it.
            if let field = unrepresentableNumber(in: bytes) {
                return .invalidManifest(field: field, message: "a number out of range for its field")
            }
            return .invalidManifest(field: "$", message: "\(manifestName) is not valid JSON")
        }
    }

    /// The JSON path (keys in sorted order) of the first integer literal that does not fit an `Int`, if the text
    /// parses as JSON at all.
    static func unrepresentableNumber(in bytes: [UInt8]) -> String? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(bytes)) else { return nil }
        func walk(_ value: Any, _ path: String) -> String? {
            if let object = value as? [String: Any] {
                for key in object.keys.sorted() {
                    if let found = walk(object[key]!, path.isEmpty ? key : path + "." + key) { return found }
                }
            } else if let array = value as? [Any] {
                for (i, item) in array.enumerated() { if let found = walk(item, path + "[\(i)]") { return found } }
            } else if let number = value as? NSNumber, !(number is Bool) {
                let text = number.stringValue
                if !text.contains(where: { ".eE".contains($0) }), Int(text) == nil { return path }
            }
            return nil
        }
        return walk(root, "")
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
        guard let kind = AdapterKind(rawValue: manifest.adapter.kind) else { throw .invalidManifest(field: "adapter.kind", message: "unknown") }
        let net = try ElasticNetwork(architecture: manifest.architecture, positions: manifest.blocks, adapterKind: kind)
        do { try net.model.load(tensors) } catch { throw .invalidWeights("\(error)") }
        let expected = Set(net.model.store.entries.map(\.name))
        if let extra = tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw .invalidWeights("tensor \(extra) is not part of the declared network")
        }
        return net
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
