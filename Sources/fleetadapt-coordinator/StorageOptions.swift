import ArgumentParser
import Coordinator
import Foundation
import PostgresClient

/// Where the data lives, shared by `serve` and `migrate`.
struct StorageOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"),
            help: ArgumentHelp("Directory for the embedded PostgreSQL cluster, the admin key hash and stored blobs.",
                               discussion: "Defaults to /var/lib/fleetadapt for root, else ~/.local/share/fleetadapt."))
    var dataDirectory: String = CoordinatorConfiguration.defaultDataDirectory

    @Option(name: .customLong("database-url"),
            help: "Use this PostgreSQL server (postgres://user:pass@host:port/db) instead of the embedded one. Also read from DATABASE_URL.")
    var databaseURL: String?

    @Option(name: .customLong("migrations-dir"), help: "Apply the NNNN_name.sql migrations of this directory instead of those compiled into the binary.")
    var migrationsDirectory: String?

    func database() throws -> CoordinatorConfiguration.Database {
        let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"]
        guard let url, !url.isEmpty else { return .embedded }
        return .external(try PostgresConfiguration(url: url))
    }
}
