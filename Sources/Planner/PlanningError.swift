/// Why the planner refused its input; each case names the field at fault so callers can map it to a 422.
public enum PlanningError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidSpace(String)
    case invalidDevice(String)
    case invalidGraph(String)

    public var description: String {
        switch self {
        case .invalidSpace(let m): "invalid planning space: \(m)"
        case .invalidDevice(let m): "invalid device profile: \(m)"
        case .invalidGraph(let m): "invalid layer graph: \(m)"
        }
    }
}
