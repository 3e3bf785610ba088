import Foundation
import HTTPServer
import PostgresClient

/// One coordinator process: database (embedded or external), migrations, routes and the HTTP daemon.
/// Stateless apart from the database, so several can run on one PostgreSQL.
public final class CoordinatorApp: Sendable {
    public let configuration: CoordinatorConfiguration
    let services: Services
    let server: HTTPServer
    let router: Router
    let embedded: EmbeddedPostgres?
    /// Restarts the embedded cluster if it dies; nil with an external database (its operator supervises it).
    let supervisor: EmbeddedPostgresSupervisor?
    let maintenance: Maintenance

    /// Starts the database if embedded, migrates, and starts serving.
    public init(configuration: CoordinatorConfiguration, clock: WallClock = .system) throws {
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
            let migrations = MigrationRunner(directory: configuration.migrationsDirectory)
            let applied = try migrations.migrate(pool)
            if !applied.isEmpty { Log.info("applied migrations: \(applied.joined(separator: ", "))") }
            let services = Services(
                pool: pool, clock: clock,
                adminKey: try AdminKey.load(explicitKey: configuration.adminKey, dataDirectory: configuration.dataDirectory),
                migrations: migrations, openAPIPath: configuration.openAPIPath, backoff: configuration.backoff,
                authFailures: configuration.authFailures, defaultLeaseSeconds: configuration.defaultLeaseSeconds)
            self.services = services
            self.maintenance = Maintenance(services: services, configuration: pgConfig, replansFleet: configuration.replansFleetInBackground)
            let router = Router()
            self.router = router
            Self.registerRoutes(services, configuration: configuration, liveness: Self.liveness(supervisor), on: router)
            var http = HTTPServerConfiguration(host: configuration.host, port: configuration.port, threadPoolSize: configuration.threadPoolSize,
                                               accessLog: configuration.accessLog ? HTTPServerConfiguration.standardErrorLog : nil)
            http.limits = configuration.httpLimits
            server = HTTPServer(configuration: http, router: router)
            try server.start()
        } catch {
            supervisor?.shutdown()
            try? embedded?.stop()
            throw error
        }
    }

    /// What `/healthz` reports: nil while the process can serve, or why it cannot recover by itself.
    static func liveness(_ supervisor: EmbeddedPostgresSupervisor?) -> @Sendable () -> String? {
        { () -> String? in
            guard let supervisor, case .failed(let reason) = supervisor.health else { return nil }
            return "The embedded PostgreSQL cannot be restarted: \(reason)"
        }
    }

    static func registerRoutes(_ services: Services, configuration: CoordinatorConfiguration,
                               liveness: @escaping @Sendable () -> String? = { nil }, on router: Router) {
        SystemRoutes(services: services, liveness: liveness).register(on: router)
        DeviceRoutes(services: services).register(on: router)
        AgentRoutes(services: services).register(on: router)
        AgentJobRoutes(services: services).register(on: router)
        DomainRoutes(services: services).register(on: router)
        CampaignRoutes(services: services).register(on: router)
        MetricsRoutes(services: services).register(on: router)
        ModelRoutes(services: services, uploadLimit: configuration.modelUploadLimitBytes).register(on: router)
        ConfigRoutes(services: services).register(on: router)
    }

    /// The database this coordinator uses (for tools that measure it directly).
    public var databaseConfiguration: PostgresConfiguration { services.pool.configuration }

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

    /// Stops accepting, finishes in-flight requests, then closes the database (and stops it if embedded).
    public func shutdown() {
        server.shutdown()
        maintenance.shutdown()
        supervisor?.shutdown()
        services.pool.close()
        do { try embedded?.stop() } catch { Log.error("stopping embedded PostgreSQL: \(error)") }
    }
}
