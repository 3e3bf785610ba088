import FleetClient
import Foundation

/// The device agent as the executable runs it: a `JobLoop` over HTTP to the coordinator (`CoordinatorClient`).
/// See `JobLoop` for what it does, `AdaptJob` / `ApplyJob` / `ProfileJob` for the jobs.
public final class AgentRunner: Sendable {
    public let configuration: AgentConfiguration
    let loop: JobLoop
    /// The inference service (`--serve`), started by `run()`.
    let service: InferenceService?

    public init(configuration: AgentConfiguration, log: @escaping @Sendable (String) -> Void = AgentRunner.writeLine) {
        self.configuration = configuration
        let client = CoordinatorClient(baseURL: configuration.coordinatorURL, token: configuration.token, tls: configuration.tls)
        service = configuration.serving.map { InferenceService(configuration: configuration, serving: $0, client: client, log: log) }
        loop = JobLoop(configuration: configuration, client: client, serving: service, log: log)
    }

    /// The agent's log: one write(2) per line on standard output, so that a line reaches a file or a pipe (a
    /// supervisor's journal, a test) at once, never held back in a stdio buffer nor lost with it when the process dies.
    @Sendable public static func writeLine(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// Asks the agent to stop: it finishes the job in hand, then `run()` returns.
    public func stop() { loop.stop() }

    /// Runs until stopped (or `maxJobs` done). Returns the number of jobs completed.
    public func run() throws -> Int {
        try service?.start()
        // A watched image folder feeds the drift window with every new frame, served or not.
        let watcher = service.flatMap { service in
            configuration.watch && !loop.local.isSafeTensors
                ? SpoolWatcher(directory: configuration.dataDirectory, window: configuration.imageWindow, service: service) : nil
        }
        watcher?.start()
        // The drift window goes to the coordinator, at most once per interval.
        let reporter = service.flatMap { service in
            configuration.driftReportInterval > 0
                ? DriftReporter(service: service, client: loop.client, local: loop.local, interval: configuration.driftReportInterval, log: loop.log) : nil
        }
        reporter?.start()
        defer {
            reporter?.stop()
            watcher?.stop()
            service?.shutdown()
        }
        return try loop.run()
    }
}
