import CoordinatorHTTP
import Foundation
import HTTPServer
import PostgresClient
import Rollout

/// Everything a coordinator process needs to start; the CLI fills it from flags and environment.
public struct CoordinatorConfiguration: Sendable {
    /// Where the database comes from: a private cluster in the data directory, or a server given by URL.
    public enum Database: Sendable {
        case embedded
        case external(PostgresConfiguration)
    }

    public var host: String
    public var port: Int
    public var dataDirectory: String
    public var database: Database
    /// Plain admin key from `FLEETADAPT_ADMIN_KEY`; nil means "use or generate the one in the data directory".
    public var adminKey: String?
    /// A directory of migrations to apply instead of the ones compiled into the binary (nil: compiled in).
    public var migrationsDirectory: String?
    /// An OpenAPI document to serve instead of the compiled-in one (nil: compiled in).
    public var openAPIPath: String?
    public var threadPoolSize: Int
    public var maxDatabaseConnections: Int
    public var accessLog: Bool
    /// Retry delays of failed and expired job attempts.
    public var backoff: Backoff = Backoff()
    /// Largest model package `POST /v1/models` accepts (413 beyond it); the package is spooled to disk meanwhile.
    public var modelUploadLimitBytes: Int = 256 << 20
    /// Whether the maintenance loop brings the fleet's configs to a newly published model. Off, a replica leaves
    /// that to other replicas or to `CoordinatorApp.replanFleet()` (tests that count one re-plan's writes need it off).
    public var replansFleetInBackground = true
    /// The lease of a job attempt when its domain names no `lease_s` (never longer than the job's `timeout_s`);
    /// heartbeats extend it. Tests that do not exercise expiry lengthen it, so a loaded machine cannot expire them.
    public var defaultLeaseSeconds = 30
    /// How long a rollback waits for an agent to take a device's restore job; past it the rollback ends without the
    /// (offline) device, whose job stays queued and runs when it returns.
    public var restoreDeadlineSeconds = 3600
    /// How the embedded PostgreSQL is watched and restarted when it dies (unused with an external database).
    public var databaseSupervision = EmbeddedPostgresSupervisor.Policy()
    /// Connection limits and deadlines of the HTTP server (per address, total, header/body deadlines, lingering).
    public var httpLimits = HTTPServerConfiguration.Limits()
    /// HTTPS with this certificate and key (reloaded by `CoordinatorApp.reloadTLS()`); nil serves plain HTTP, for
    /// loopback or behind a TLS-terminating proxy.
    public var tls: TLSConfiguration?
    /// Failed authentications one client address may make before it gets 429.
    public var authFailures = AuthFailurePolicy()

    public init(host: String = "127.0.0.1", port: Int = 8080, dataDirectory: String = CoordinatorConfiguration.defaultDataDirectory,
                database: Database = .embedded, adminKey: String? = nil,
                migrationsDirectory: String? = nil, openAPIPath: String? = nil,
                threadPoolSize: Int = 8, maxDatabaseConnections: Int = 8, accessLog: Bool = true) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.database = database
        self.adminKey = adminKey
        self.migrationsDirectory = migrationsDirectory
        self.openAPIPath = openAPIPath
        self.threadPoolSize = threadPoolSize
        self.maxDatabaseConnections = maxDatabaseConnections
        self.accessLog = accessLog
    }

    /// `/var/lib/fleetadapt` for root (the embedded server's unprivileged user must reach it),
    /// otherwise `$XDG_DATA_HOME/fleetadapt` or `~/.local/share/fleetadapt`.
    public static var defaultDataDirectory: String {
        if geteuid() == 0 { return "/var/lib/fleetadapt" }
        let env = ProcessInfo.processInfo.environment
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/fleetadapt" }
        return NSHomeDirectory() + "/.local/share/fleetadapt"
    }
}
