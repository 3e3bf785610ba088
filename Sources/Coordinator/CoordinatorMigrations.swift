import Foundation
import PostgresClient

/// `fleetadapt-coordinator migrate`: the start-up migration step on its own, without serving.
public enum CoordinatorMigrations {
    public static func run(dataDirectory: String, database: CoordinatorConfiguration.Database,
                           migrationsDirectory: String?) throws -> [String] {
        let directory = migrationsDirectory ?? ResourceLocator.directory(named: "migrations") ?? "migrations"
        switch database {
        case .external(let config):
            let pool = PostgresPool(configuration: config, maxConnections: 1)
            defer { pool.close() }
            return try MigrationRunner(directory: directory).migrate(pool)
        case .embedded:
            let embedded = EmbeddedPostgres(dataDirectory: dataDirectory + "/postgres")
            let config = try embedded.start()
            defer { try? embedded.stop() }
            let pool = PostgresPool(configuration: config, maxConnections: 1)
            defer { pool.close() }
            return try MigrationRunner(directory: directory).migrate(pool)
        }
    }
}
