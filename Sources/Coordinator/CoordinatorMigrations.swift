import BundledResources
import Foundation
import PostgresClient

/// `fleetadapt-coordinator migrate`: the start-up migration step on its own, without serving.
public enum CoordinatorMigrations {
    public static func run(dataDirectory: String, database: CoordinatorConfiguration.Database,
                           migrationsDirectory: String?) throws -> [String] {
        let runner = runner(directory: migrationsDirectory)
        switch database {
        case .external(let config):
            let pool = PostgresPool(configuration: config, maxConnections: 1)
            defer { pool.close() }
            return try runner.migrate(pool)
        case .embedded:
            let embedded = EmbeddedPostgres(dataDirectory: dataDirectory + "/postgres")
            let config = try embedded.start()
            defer { try? embedded.stop() }
            let pool = PostgresPool(configuration: config, maxConnections: 1)
            defer { pool.close() }
            return try runner.migrate(pool)
        }
    }

    /// The migrations of `directory`, or those compiled into the binary when it is nil: a coordinator copied
    /// anywhere carries the schema it was built for.
    public static func runner(directory: String?) -> MigrationRunner {
        if let directory { return MigrationRunner(directory: directory) }
        return MigrationRunner(bundled: BundledResources.migrations.map { MigrationFile(name: $0.name, sql: $0.sql) })
    }
}
