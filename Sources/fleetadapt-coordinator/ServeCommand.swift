import ArgumentParser
import CommandSupport
import Coordinator
import Foundation
import Logging
import HTTPServer

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API until SIGTERM or SIGINT (the default command).",
        discussion: HelpText.reflow("""
            On a signal it stops accepting, lets in-flight requests finish, answers waiting long-polls, then stops the embedded database.

            HTTPS: with --tls-cert and --tls-key (PEM files; also FLEETADAPT_TLS_CERT and FLEETADAPT_TLS_KEY) the API is served over TLS 1.2/1.3 only. SIGHUP reads both files again: new connections get the renewed certificate while open ones finish on the old; a file that does not load is logged and the old certificate stays. Without them the API is plain HTTP, for loopback or behind a TLS-terminating proxy.
            """))

    @Option(help: "TCP port to listen on. Also read from FLEETADAPT_PORT.")
    var port: Int?

    @Option(help: "Address to bind; 0.0.0.0 exposes the API beyond this machine.")
    var bind: String = "127.0.0.1"

    @Option(help: "HTTP worker threads (each may wait on the database).")
    var threads: Int = 8

    @Option(help: "PEM file of the server's certificate chain; with --tls-key, serve HTTPS only.")
    var tlsCert: String?

    @Option(help: "PEM file of the private key of --tls-cert.")
    var tlsKey: String?

    @Option(help: "Seconds a rollback waits for an offline device to take its restore job before it ends without it (the job stays queued). Also read from FLEETADAPT_RESTORE_DEADLINE.")
    var restoreDeadline: Int?

    @OptionGroup var storage: StorageOptions

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0–65535.") }
        if !(1...256).contains(threads) { throw ValidationError("--threads must be 1–256.") }
        if let restoreDeadline, !(1...2_592_000).contains(restoreDeadline) { throw ValidationError("--restore-deadline must be 1–2592000 seconds.") }
    }

    /// The certificate and key from the flags, else from the environment; both or neither.
    func tlsConfiguration(_ env: [String: String]) throws -> TLSConfiguration? {
        let cert = tlsCert ?? env["FLEETADAPT_TLS_CERT"].flatMap { $0.isEmpty ? nil : $0 }
        let key = tlsKey ?? env["FLEETADAPT_TLS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        switch (cert, key) {
        case (nil, nil): return nil
        case let (cert?, key?): return TLSConfiguration(certificateFile: cert, keyFile: key)
        default: throw ValidationError("--tls-cert and --tls-key go together.")
        }
    }

    func run() throws {
        let logger = Logger(label: "fleetadapt.coordinator")
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
        let tls = try tlsConfiguration(env)
        var config = CoordinatorConfiguration(
            host: bind, port: resolvedPort, dataDirectory: storage.dataDirectory, database: try storage.database(),
            adminKey: env["FLEETADAPT_ADMIN_KEY"], migrationsDirectory: storage.migrationsDirectory,
            threadPoolSize: threads)
        config.tls = tls
        if let restoreDeadline {
            config.restoreDeadlineSeconds = restoreDeadline
        } else if let text = env["FLEETADAPT_RESTORE_DEADLINE"], !text.isEmpty {
            guard let s = Int(text), (1...2_592_000).contains(s) else { throw ValidationError("FLEETADAPT_RESTORE_DEADLINE must be 1–2592000 seconds.") }
            config.restoreDeadlineSeconds = s
        }
        let app = try CoordinatorApp(configuration: config)
        let scheme = tls == nil ? "http" : "https"
        logger.info("fleetadapt-coordinator listening on \(scheme)://\(bind):\(app.port)")
        let hangup = tls == nil ? nil : HTTPServer.onHangup {
            do {
                try app.reloadTLS()
                logger.info("TLS certificate reloaded")
            } catch {
                logger.error("TLS reload failed, the old certificate stays: \(error)")
            }
        }
        HTTPServer.waitForTermination()
        hangup?.cancel()
        logger.info("shutting down")
        app.shutdown()
    }
}
