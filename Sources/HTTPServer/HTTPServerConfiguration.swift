import Foundation

/// How the daemon listens and what it tolerates.
public struct HTTPServerConfiguration: Sendable {
    /// Numeric IPv4/IPv6 address or "localhost".
    public var host: String = "127.0.0.1"
    /// 0 picks an ephemeral port; read it back from `HTTPServer.boundPort`.
    public var port: Int = 8080
    public var threadPoolSize: Int = 8
    public var defaultBodyLimit: Int = 1 << 20
    /// Idle seconds before MHD drops a connection (suspended long-polls are exempt).
    public var connectionTimeoutSeconds: Int = 30
    public var spoolDirectory: String = NSTemporaryDirectory()
    /// One line per request; nil disables access logging.
    public var accessLog: (@Sendable (String) -> Void)? = HTTPServerConfiguration.standardErrorLog

    public init(host: String = "127.0.0.1", port: Int = 8080, threadPoolSize: Int = 8,
                defaultBodyLimit: Int = 1 << 20, connectionTimeoutSeconds: Int = 30,
                spoolDirectory: String = NSTemporaryDirectory(),
                accessLog: (@Sendable (String) -> Void)? = HTTPServerConfiguration.standardErrorLog) {
        self.host = host
        self.port = port
        self.threadPoolSize = threadPoolSize
        self.defaultBodyLimit = defaultBodyLimit
        self.connectionTimeoutSeconds = connectionTimeoutSeconds
        self.spoolDirectory = spoolDirectory
        self.accessLog = accessLog
    }

    /// Writes the line with one `write(2)` so lines from worker threads never interleave.
    public static let standardErrorLog: @Sendable (String) -> Void = { line in
        var line = line
        line.append("\n")
        line.withUTF8 { buffer in
            _ = Foundation.write(2, buffer.baseAddress, buffer.count)
        }
    }
}
