/// Why a package, manifest or combination was refused; the text names the field or file at fault.
public enum PackageError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidArchive(String)
    case invalidManifest(String)
    case hashMismatch(String)
    case tooLarge(String)
    case invalidCombination(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .invalidArchive(let s): return "invalid package archive: \(s)"
        case .invalidManifest(let s): return "invalid manifest: \(s)"
        case .hashMismatch(let s): return "hash mismatch: \(s)"
        case .tooLarge(let s): return "package too large: \(s)"
        case .invalidCombination(let s): return "invalid combination: \(s)"
        case .unsupported(let s): return "unsupported: \(s)"
        }
    }
}
