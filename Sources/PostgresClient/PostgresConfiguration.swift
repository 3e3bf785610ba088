/// How to reach a server: a libpq connection URI, or a unix socket directory for the embedded cluster.
public struct PostgresConfiguration: Sendable, Equatable {
    /// libpq keyword/value pairs; a URI is kept whole under `dbname` (libpq expands it).
    var keywords: [(String, String)]
    public var connectTimeoutSeconds: Int = 5

    public static func == (a: PostgresConfiguration, b: PostgresConfiguration) -> Bool {
        a.keywords.map { $0.0 + "=" + $0.1 } == b.keywords.map { $0.0 + "=" + $0.1 } && a.connectTimeoutSeconds == b.connectTimeoutSeconds
    }

    /// `postgres://user:pass@host:port/db?sslmode=...` or `postgresql://…`.
    public init(url: String) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw PostgresError(kind: .connection, message: "DATABASE_URL must start with postgres:// or postgresql://")
        }
        keywords = [("dbname", url)]
    }

    /// A server on a Unix socket; the password (when the server asks for one) travels only to libpq, never in a
    /// URI, an environment variable or a log line.
    public init(socketDirectory: String, port: Int, user: String, password: String? = nil, database: String) {
        keywords = [("host", socketDirectory), ("port", String(port)), ("user", user), ("dbname", database)]
        if let password { keywords.append(("password", password)) }
    }

    /// The same server, another database. A URI stays first (libpq expands only the first `dbname`
    /// and lets later keywords override what it set), then the new database name.
    public func withDatabase(_ name: String) -> PostgresConfiguration {
        var copy = self
        copy.keywords.removeAll { $0.0 == "dbname" && !$0.1.contains("://") }
        copy.keywords.append(("dbname", name))
        return copy
    }

    var allKeywords: [(String, String)] {
        keywords + [("connect_timeout", String(connectTimeoutSeconds)), ("application_name", "fleetadapt")]
    }
}
