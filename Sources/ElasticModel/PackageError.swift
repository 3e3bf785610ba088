/// Why a package, manifest or combination was refused; the text names the field or file at fault.
public enum PackageError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidArchive(String)
    /// `field` is the JSON path inside `manifest.json` (`blocks[2].variants[1].profile.param_bytes`).
    case invalidManifest(field: String, message: String)
    /// The weights do not fit the network the manifest declares (a tensor missing, extra or of another shape).
    case invalidWeights(String)
    /// `file` is the package entry whose digest or size differs.
    case hashMismatch(file: String, message: String)
    case tooLarge(String)
    case invalidCombination(String)
    case unsupported(String)

    /// Where a refusal points, for the `errors[].field` of a 422: `manifest.<path>`, a file of the package, or `body`.
    public var field: String {
        switch self {
        case .invalidManifest(let field, _): return "manifest." + field
        case .invalidWeights: return ElasticPackage.weightsName
        case .hashMismatch(let file, _): return file
        case .invalidArchive, .tooLarge, .invalidCombination, .unsupported: return "body"
        }
    }

    /// The reason without the field.
    public var message: String {
        switch self {
        case .invalidManifest(_, let m), .hashMismatch(_, let m): return m
        case .invalidArchive(let s), .invalidWeights(let s), .tooLarge(let s), .invalidCombination(let s), .unsupported(let s): return s
        }
    }

    public var description: String {
        switch self {
        case .invalidArchive(let s): return "invalid package archive: \(s)"
        case .invalidManifest(let field, let m): return "invalid manifest: \(field): \(m)"
        case .invalidWeights(let s): return "weights do not fit the declared network: \(s)"
        case .hashMismatch(let file, let m): return "hash mismatch: \(file): \(m)"
        case .tooLarge(let s): return "package too large: \(s)"
        case .invalidCombination(let s): return "invalid combination: \(s)"
        case .unsupported(let s): return "unsupported: \(s)"
        }
    }
}
