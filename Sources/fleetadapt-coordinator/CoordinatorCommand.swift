import ArgumentParser
import CommandSupport

@main
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleetadapt-coordinator",
        abstract: "The FleetAdapt coordinator: device registry, planning and fleet adaptation over HTTP.",
        discussion: HelpText.reflow("""
            With no DATABASE_URL the coordinator runs its own private PostgreSQL in the data directory
            (started on launch, stopped on exit, reused next time). Set DATABASE_URL to use an existing
            server instead; several coordinators may share one database.

            Admin routes need 'Authorization: Bearer <admin key>'. Set FLEETADAPT_ADMIN_KEY to choose the key;
            otherwise one is generated on first start, printed once, and only its hash is kept.

            Examples:
              fleetadapt-coordinator                          # serve on 127.0.0.1:8080
              fleetadapt-coordinator serve --port 9000 --data-dir /srv/fleetadapt
              DATABASE_URL=postgres://fleet@db/fleet fleetadapt-coordinator migrate
            """),
        version: FleetAdaptVersion.line,
        subcommands: [ServeCommand.self, MigrateCommand.self],
        defaultSubcommand: ServeCommand.self)
}
