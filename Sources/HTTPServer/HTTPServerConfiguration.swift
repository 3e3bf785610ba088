import Foundation
import Logging

/// How the daemon listens and what it tolerates.
public struct HTTPServerConfiguration: Sendable {
    /// Numeric IPv4/IPv6 address or "localhost".
    public var host: String = "127.0.0.1"
    /// 0 picks an ephemeral port; read it back from `HTTPServer.boundPort`.
    public var port: Int = 8080
    /// Listen on a Unix-domain socket at this path instead of `host`/`port` (created mode 0660, removed by
    /// `shutdown()`; an existing file that is not a stale socket is refused). Per-address limits do not apply.
    public var unixSocketPath: String?
    public var threadPoolSize: Int = 8
    public var defaultBodyLimit: Int = 1 << 20
    /// Idle seconds before MHD drops a connection (suspended long-polls are exempt).
    public var connectionTimeoutSeconds: Int = 30
    public var spoolDirectory: String = NSTemporaryDirectory()
    /// One text line per request (`AccessLogEntry.textLine`); nil disables it. Ignored when `accessLogEntries` is set.
    public var accessLog: (@Sendable (String) -> Void)? = HTTPServerConfiguration.standardErrorLog
    /// Each request's fields; `structuredAccessLog` logs them as one swift-log line (what the executables use).
    public var accessLogEntries: (@Sendable (AccessLogEntry) -> Void)?
    /// What one client may hold and how long it may take; see `Limits`.
    public var limits = Limits()
    /// HTTPS with this certificate and key; nil serves plain HTTP (loopback, or behind a terminating proxy).
    public var tls: TLSConfiguration?
    /// After `reloadTLS()`, the daemon serving the old certificate keeps its open connections for at most this
    /// long (a parked long-poll is answered within a minute, an idle keep-alive closes after
    /// `connectionTimeoutSeconds`), then stops.
    public var tlsDrainSeconds = 120

    /// Bounds that keep slow or hostile clients from holding the server: every number here is enforced before a
    /// handler runs, and none can be extended by trickling bytes.
    public struct Limits: Sendable {
        /// Open connections in total (`MHD_OPTION_CONNECTION_LIMIT`); MHD's default is FD_SETSIZE - 4 = 1,020.
        public var maxConnections = 4096
        /// Open connections from one client address (`MHD_OPTION_PER_IP_CONNECTION_LIMIT`); more are refused at
        /// accept. Devices behind one NAT share an address, so size it for the largest site.
        public var maxConnectionsPerAddress = 256
        /// From accept (or the end of the previous response) until the request's headers are complete: an absolute
        /// deadline, unlike MHD's idle timeout, which every received byte resets.
        public var headerDeadlineSeconds = 10
        /// From the end of the headers until the body is complete (uploads of the largest allowed size must fit).
        public var bodyDeadlineSeconds = 300
        /// Longest request target; longer ones get 414 at once.
        public var maxTargetLength = 8192
        /// Most query parameters; more get 414 at once (MHD itself stalls when they exhaust its memory pool).
        public var maxQueryParameters = 64
        /// After an early answer (401, 413, ...) to a request whose body was not read, the connection keeps
        /// reading and dropping up to this many bytes, for at most `lingerSeconds`, before it closes, so that
        /// clients that send the whole body before reading still see the answer instead of a reset.
        public var lingerBytes = 64 << 20
        public var lingerSeconds = 10
        /// Connections lingering at once; past it an early answer closes at once.
        public var maxLingering = 256

        public init() {}
    }

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
    /// One line per request through swift-log (label `fleetadapt.http.access`), in the process's log format.
    public static let structuredAccessLog: @Sendable (AccessLogEntry) -> Void = { entry in entry.log(to: accessLogger) }
    static let accessLogger = Logger(label: "fleetadapt.http.access")

    public static let standardErrorLog: @Sendable (String) -> Void = { line in
        var line = line
        line.append("\n")
        line.withUTF8 { buffer in
            _ = Foundation.write(2, buffer.baseAddress, buffer.count)
        }
    }
}
