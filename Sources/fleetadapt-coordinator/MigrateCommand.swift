import ArgumentParser
import CommandSupport
import Coordinator
import Foundation

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending database migrations and exit.",
        discussion: HelpText.reflow("""
            Each migration runs in its own transaction under an advisory lock, so replicas starting together
            migrate once. An applied migration whose file has changed since stops with an error: add a new
            migration instead of editing one.
            """))

    @OptionGroup var storage: StorageOptions

    func run() throws {
        let applied = try CoordinatorMigrations.run(dataDirectory: storage.dataDirectory, database: try storage.database(),
                                                    migrationsDirectory: storage.migrationsDirectory)
        print(applied.isEmpty ? "database is up to date" : "applied: \(applied.joined(separator: ", "))")
    }
}
