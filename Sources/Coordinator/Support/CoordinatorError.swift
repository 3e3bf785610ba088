/// Failures that stop the coordinator from starting; the CLI prints them and exits non-zero.
public enum CoordinatorError: Error, CustomStringConvertible {
    case startup(String)

    public var description: String {
        switch self {
        case .startup(let message): "cannot start: \(message)"
        }
    }
}
