/// A failure talking to PostgreSQL. Server errors keep SQLSTATE and message for logs;
/// the HTTP layer above decides what (little) of it a client sees.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        case connection
        case server
        case decode
        case protocolViolation
        case poolTimeout
    }

    public var kind: Kind
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var constraint: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, constraint: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.constraint = constraint
    }

    /// The connection is gone or the server is shutting down or starting: the caller may retry on a new connection.
    public var isConnectionFailure: Bool {
        if kind == .connection || kind == .poolTimeout { return true }
        guard let s = sqlState else { return false }
        return s.hasPrefix("08") || s == "57P01" || s == "57P02" || s == "57P03"
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }

    public var description: String {
        var s = "PostgreSQL \(kind)"
        if let sqlState { s += " [\(sqlState)]" }
        s += ": \(message)"
        if let detail { s += " (\(detail))" }
        return s
    }
}
