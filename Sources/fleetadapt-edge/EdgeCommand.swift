import ArgumentParser
import CommandSupport
import EdgeRuntime
import FleetClient
import Foundation
import Logging
import HTTPServer

@main
struct EdgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleetadapt-edge",
        abstract: "The FleetAdapt edge runtime: runs the server half of devices' split networks.",
        discussion: HelpText.reflow("""
            When the coordinator's plan for a device cuts its network after block k (its config's `partition`),
            the device runs the stem and blocks 0…k and sends the features to this server, which runs the
            remaining blocks and the head and answers the logits.
              PUT  /v1/edge/session  (device token; body: safetensors of the device's own adapters and batch
                                      norms after the cut) — the server asks the coordinator, with that token,
                                      for the device's config, downloads its model package (SHA-256 checked,
                                      cached in --cache-dir), composes the device's variants, installs the
                                      tensors, and keeps the session in memory;
              POST /v1/edge/infer    (device token; body: safetensors with `x` of shape [N, C, H, W] = the cut
                                      features) → safetensors with `logits` [N, classes].
            Tokens are never stored (sessions are keyed by their SHA-256); a device can only run its own session.
            An inference request re-checks the device with the coordinator once --session-ttl has passed since the
            last check; a device the coordinator no longer accepts (decommissioned) loses its session (401).

            HTTPS: with --tls-cert and --tls-key the server speaks only HTTPS; SIGHUP reads both files again and
            serves the new certificate to new connections while open ones finish on the old. --ca-file names the
            certificate authorities that vouch for an https coordinator (instead of the system's).

            Example:
              fleetadapt-edge --coordinator http://10.0.0.1:8080 --port 8090
              fleetadapt-agent … --edge-server edge-1 --edge-url http://10.0.0.7:8090 --bandwidth-mbps 1000 --rtt-ms 0.2
            """),
        version: FleetAdaptVersion.line)

    @Option(help: "Base URL of the coordinator that vouches for device tokens and plans the cuts.")
    var coordinator: String = "http://127.0.0.1:8080"

    @Option(help: "Address to listen on.")
    var bind: String = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one and prints it).")
    var port: Int = 8090

    @Option(help: "Directory caching model packages (default: $TMPDIR/fleetadapt-edge-cache).")
    var cacheDir: String?

    @Option(help: "HTTP worker threads.")
    var threads: Int = 4

    @Option(help: "Device sessions kept in memory at once (each holds a whole elastic network); the least recently used is dropped beyond it.")
    var maxSessions: Int = 256

    @Option(help: "Seconds the coordinator's confirmation that a session's device still exists is trusted; an inference request after that asks again, and a decommissioned device loses its session (401). 0 asks on every request.")
    var sessionTtl: Double = 3

    @Flag(help: "Do not log every request.")
    var quiet = false

    @Option(help: "PEM file of this server's certificate chain; with --tls-key, serve HTTPS only.")
    var tlsCert: String?

    @Option(help: "PEM file of the private key of --tls-cert.")
    var tlsKey: String?

    @Option(help: "PEM file of the certificate authorities to trust for an https --coordinator (default: the system's).")
    var caFile: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0–65535") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1–256") }
        guard maxSessions >= 1 else { throw ValidationError("--max-sessions must be at least 1") }
        guard sessionTtl.isFinite, (0...300).contains(sessionTtl) else { throw ValidationError("--session-ttl must be 0–300 seconds") }
        guard URL(string: coordinator)?.scheme.map({ ["http", "https"].contains($0) }) == true else {
            throw ValidationError("--coordinator must be an http(s) URL")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    func run() throws {
        let logger = Logger(label: "fleetadapt.edge")
        var configuration = EdgeConfiguration(
            coordinatorURL: coordinator, host: bind, port: port,
            cacheDirectory: cacheDir ?? NSTemporaryDirectory() + "fleetadapt-edge-cache", threadPoolSize: threads,
            maxSessions: maxSessions, accessLog: !quiet, sessionConfirmationTTL: .milliseconds(Int((sessionTtl * 1000).rounded())))
        if let tlsCert, let tlsKey { configuration.tls = TLSConfiguration(certificateFile: tlsCert, keyFile: tlsKey) }
        configuration.coordinatorTLS = ClientTLS(caFile: caFile)
        let server = EdgeServer(configuration: configuration)
        try server.start()
        let scheme = configuration.tls == nil ? "http" : "https"
        logger.info("fleetadapt-edge listening on \(scheme)://\(bind):\(server.port) for \(coordinator)")
        let hangup = configuration.tls == nil ? nil : HTTPServer.onHangup {
            do {
                try server.reloadTLS()
                logger.info("fleetadapt-edge: TLS certificate reloaded")
            } catch {
                logger.error("fleetadapt-edge: TLS reload failed, the old certificate stays: \(error)")
            }
        }
        HTTPServer.waitForTermination()
        hangup?.cancel()
        server.shutdown()
        logger.info("fleetadapt-edge stopped")
    }
}
