import ArgumentParser
import Coordinator
import Foundation
import HTTPServer

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API until SIGTERM or SIGINT (the default command).",
        discussion: "On a signal it stops accepting, lets in-flight requests finish, answers waiting long-polls, then stops the embedded database.")

    @Option(help: "TCP port to listen on. Also read from FLEETADAPT_PORT.")
    var port: Int?

    @Option(help: "Address to bind; 0.0.0.0 exposes the API beyond this machine.")
    var bind: String = "127.0.0.1"

    @Option(help: "HTTP worker threads (each may wait on the database).")
    var threads: Int = 8

    @OptionGroup var storage: StorageOptions

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0–65535.") }
        if !(1...256).contains(threads) { throw ValidationError("--threads must be 1–256.") }
    }

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        if let key = env["FLEETADAPT_ADMIN_KEY"], !key.isEmpty, let problem = AdminKey.problem(with: key) {
            // Refused before the database starts, so the operator sees why at once.
            throw CoordinatorError.startup(problem)
        }
        var resolvedPort = 8080
        if let port { resolvedPort = port } else if let text = env["FLEETADAPT_PORT"] {
            guard let p = Int(text), (0...65535).contains(p) else { throw ValidationError("FLEETADAPT_PORT must be 0–65535.") }
            resolvedPort = p
        }
        let config = CoordinatorConfiguration(
            host: bind, port: resolvedPort, dataDirectory: storage.dataDirectory, database: try storage.database(),
            adminKey: env["FLEETADAPT_ADMIN_KEY"], migrationsDirectory: storage.migrationsDirectory,
            threadPoolSize: threads)
        let app = try CoordinatorApp(configuration: config)
        FileHandle.standardError.write(Data("fleetadapt-coordinator listening on http://\(bind):\(app.port)\n".utf8))
        HTTPServer.waitForTermination()
        FileHandle.standardError.write(Data("shutting down\n".utf8))
        app.shutdown()
    }
}
