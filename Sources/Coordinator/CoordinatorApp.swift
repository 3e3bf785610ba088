import BundledResources
import CoordinatorDomain
import CoordinatorHTTP
import CoordinatorStore
import Foundation
import HTTPServer
import PostgresClient
import Synchronization

/// One coordinator process: database (embedded or external), migrations, routes and the HTTP daemon.
/// Stateless apart from the database, so several can run on one PostgreSQL.
///
/// Built in two steps, the hummingbird way: `makeRouter(services:)` wires every route over a set of services without
/// a socket or a database start (tests call it in-process through `Router.respond`), and `start()` binds the port
/// and starts the background maintenance.
public final class CoordinatorApp: Sendable {
    public let configuration: CoordinatorConfiguration
    let services: CoordinatorServices
    let server: HTTPServer
    let router: Router
    let embedded: EmbeddedPostgres?
    /// Restarts the embedded cluster if it dies; nil with an external database (its operator supervises it).
    let supervisor: EmbeddedPostgresSupervisor?
    private let maintenance = Mutex<Maintenance?>(nil)

    /// Starts the database if embedded, migrates, and starts serving.
    public convenience init(configuration: CoordinatorConfiguration, clock: WallClock = .system) throws {
        try self.init(unstarted: configuration, clock: clock)
        do { try start() } catch {
            shutdown()
            throw error
        }
    }

    /// Starts the database if embedded, migrates and builds the services and the router; binds no port.
    init(unstarted configuration: CoordinatorConfiguration, clock: WallClock) throws {
        self.configuration = configuration
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let embedded: EmbeddedPostgres?
        let pgConfig: PostgresConfiguration
        switch configuration.database {
        case .embedded:
            let e = EmbeddedPostgres(dataDirectory: configuration.dataDirectory + "/postgres")
            pgConfig = try e.start()
            embedded = e
        case .external(let c):
            pgConfig = c
            embedded = nil
        }
        self.embedded = embedded
        let supervisor = embedded.map { EmbeddedPostgresSupervisor(cluster: $0, policy: configuration.databaseSupervision, log: { Log.error($0) }) }
        self.supervisor = supervisor
        do {
            let pool = PostgresPool(configuration: pgConfig, maxConnections: configuration.maxDatabaseConnections)
            services = try Self.makeServices(pool: pool, configuration: configuration, clock: clock, liveness: Self.liveness(supervisor))
            router = Self.makeRouter(services: services)
            var http = HTTPServerConfiguration(host: configuration.host, port: configuration.port, threadPoolSize: configuration.threadPoolSize,
                                               accessLog: configuration.accessLog ? HTTPServerConfiguration.standardErrorLog : nil)
            http.limits = configuration.httpLimits
            http.tls = configuration.tls
            // Every finished request (long-polls too) feeds the lease counter, and is logged when access logging is on.
            let (metrics, logs) = (services.metrics, configuration.accessLog)
            http.accessLog = nil
            http.accessLogEntries = { entry in
                metrics.observeCompleted(method: entry.method, route: entry.route, status: entry.status)
                if logs { HTTPServerConfiguration.structuredAccessLog(entry) }
            }
            server = HTTPServer(configuration: http, router: router)
            Self.registerMetrics(services: services, server: server)
        } catch {
            supervisor?.shutdown()
            try? embedded?.stop()
            throw error
        }
    }

    /// Migrates the database behind `pool` and builds the coordinator's services over it (no socket).
    static func makeServices(pool: PostgresPool, configuration: CoordinatorConfiguration, clock: WallClock,
                             liveness: @escaping @Sendable () -> String? = { nil }) throws -> CoordinatorServices {
        let migrations = CoordinatorMigrations.runner(directory: configuration.migrationsDirectory)
        let applied = try migrations.migrate(pool)
        if !applied.isEmpty { Log.info("applied migrations: \(applied.joined(separator: ", "))") }
        return CoordinatorServices(
            pool: pool, clock: clock,
            adminKey: try AdminKey.load(explicitKey: configuration.adminKey, dataDirectory: configuration.dataDirectory),
            migrations: migrations, openAPIPath: configuration.openAPIPath, backoff: configuration.backoff,
            authFailures: configuration.authFailures, defaultLeaseSeconds: configuration.defaultLeaseSeconds,
            restoreDeadline: TimeInterval(configuration.restoreDeadlineSeconds),
            modelUploadLimitBytes: configuration.modelUploadLimitBytes, queryParameters: BundledResources.queryParameters, liveness: liveness)
    }

    /// Every route over `services`, on a fresh router: no socket, no database start.
    static func makeRouter(services: CoordinatorServices) -> Router {
        services.makeRouter()
    }

    /// Binds the port and starts the maintenance loop (lease rescue, follow-ups, campaign evaluation, fleet catch-up,
    /// long-poll wake-ups).
    public func start() throws {
        try server.start()
        let replansFleet = configuration.replansFleetInBackground
        let (work, database) = (services.maintenanceWork, services.stores.pool.configuration)
        maintenance.withLock { running in
            if running == nil { running = Maintenance(work: work, configuration: database, replansFleet: replansFleet) }
        }
    }

    /// What `/healthz` reports: nil while the process can serve, or why it cannot recover by itself.
    static func liveness(_ supervisor: EmbeddedPostgresSupervisor?) -> @Sendable () -> String? {
        { () -> String? in
            guard let supervisor, case .failed(let reason) = supervisor.health else { return nil }
            return "The embedded PostgreSQL cannot be restarted: \(reason)"
        }
    }

    /// The database this coordinator uses (for tools that measure it directly).
    public var databaseConfiguration: PostgresConfiguration { services.stores.pool.configuration }

    /// The embedded cluster when this coordinator runs one (for supervision tests and tools), else nil.
    public var embeddedDatabase: EmbeddedPostgres? { embedded }

    /// Restarts of the embedded cluster after it died, since start.
    public var databaseRestarts: Int { supervisor?.restartCount ?? 0 }

    /// The port actually bound (useful with port 0 in tests).
    public var port: Int { server.boundPort }

    /// Every route the server answers, for the contract test.
    public var routes: [(method: String, pattern: String)] {
        router.routes.map { ($0.method.rawValue, $0.pattern) }
    }

    /// Re-plans every active device against the newest elastic model, as publishing a model does; for tools that
    /// measure it (the HTTP path is `POST /v1/models`). Returns the devices planned and the versions written.
    public func replanFleet() throws -> (planned: Int, changed: Int) {
        try services.replanner.replanAll(trigger: "model_published")
    }

    /// Rows that benchmarks need in this coordinator's database and the API does not create in bulk.
    public var benchmarkFixtures: BenchmarkFixtures { BenchmarkFixtures(stores: services.stores) }

    /// Reads the TLS certificate and key again and serves them to new connections; open ones finish on the old.
    /// A file that does not load throws and the running certificate stays.
    public func reloadTLS() throws { try server.reloadTLS() }

    /// Stops accepting, finishes in-flight requests, then closes the database (and stops it if embedded).
    public func shutdown() {
        server.shutdown()
        maintenance.withLock { $0 }?.shutdown()
        supervisor?.shutdown()
        services.stores.pool.close()
        do { try embedded?.stop() } catch { Log.error("stopping embedded PostgreSQL: \(error)") }
    }
}
