import Agent
import ArgumentParser
import CommandSupport
import FleetAPI
import FleetClient
import Foundation

@main
struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleetadapt-agent",
        abstract: "The FleetAdapt device agent: leases jobs from the coordinator and runs them on this device.",
        discussion: HelpText.reflow("""
            The agent reports its context (free memory, plus --battery-pct and the edge link flags when given),
            long-polls for jobs and runs one at a time, always on the combination of block variants the
            coordinator planned for this device:
              adapt    trains the block adapters on the device's own unlabeled images (labels, if the data has
                       them, are used only to report accuracy), uploads them, and reports entropy/accuracy
                       before and after, training time, energy and the combination's measured latency;
              apply    installs the domain's aggregated adapters (devices that cannot afford training);
              profile  measures every variant of every block here, so the planner plans from these figures.
            While a job runs, a heartbeat every second renews its lease and carries its progress (adapt: total_steps
            and the steps done as it trains, entropy_before once measured; profile: positions_done of total_positions).
            With --edge-url, a device whose config cuts the network after block k measures its latency split:
            blocks up to k here, the rest on that edge server (`fleetadapt-edge`), the link's declared
            --bandwidth-mbps and --rtt-ms simulated on top of the real transfer.
            It never exits because the coordinator is unreachable: it retries with capped exponential backoff
            (0.5 s doubling up to --max-retry-delay, one log line per failure), and a finished result (the result
            and the trained adapters) waits in --state-dir until the coordinator has it, across restarts of the
            agent too. It stops on SIGTERM/SIGINT after the job in hand (an undelivered result stays saved).

            The token comes from --token, FLEETADAPT_TOKEN, or --token-file (in that order); otherwise from
            <state-dir>/device-token, which the agent writes (mode 0600) when it enrols: with --enrol-token-file and
            no stored token, it enrols itself (POST /v1/agent/enrol, the device described by --name, --hardware-class,
            --gflops, --memory-mb, --latency-budget-ms, --memory-budget-mb) and later starts reuse the stored token.
            Elastic packages are downloaded from the coordinator (GET /v1/models/{id}/package), verified
            (SHA-256, archive, tensors) and cached in --cache-dir; --model uses a local package instead.

            Example:
              fleetadapt-agent --coordinator http://10.0.0.1:8080 --token-file /etc/fleetadapt/token \\
                --data-dir /var/lib/fleetadapt-agent/data
            """),
        version: FleetAdaptVersion.line)

    @Option(help: "Base URL of the coordinator.")
    var coordinator: String = "http://127.0.0.1:8080"

    @Option(help: "This device's bearer token (prefer FLEETADAPT_TOKEN or --token-file: command lines are visible to other users).")
    var token: String?

    @Option(help: "File holding this device's token.")
    var tokenFile: String?

    @Option(help: "File holding an enrolment token: with no token given or stored, the agent enrols itself with it and keeps its own token in <state-dir>/device-token (0600).")
    var enrolTokenFile: String?

    @Option(help: "The device's name when it enrols (default: the host name).")
    var name: String?

    @Option(help: "The device's hardware class when it enrols (e.g. raspberry-pi-4).")
    var hardwareClass: String?

    @Option(help: "The device's throughput in GFLOP/s when it enrols.")
    var gflops: Double?

    @Option(help: "The device's memory in MiB when it enrols (default: MemTotal of /proc/meminfo).")
    var memoryMb: Int?

    @Option(help: "The latency budget per inference in ms when it enrols.")
    var latencyBudgetMs: Double?

    @Option(help: "The memory budget of the model in MiB when it enrols.")
    var memoryBudgetMb: Double?

    @Option(help: "Directory with the device's local data: data.safetensors (see `fleetadapt data make-domain`), or a folder of JPEG/PNG images (recursive; class_name/ subfolders give labels, for reporting only).")
    var dataDir: String

    @Option(help: "Use this local elastic package (.fap, from `fleetadapt model build`) instead of downloading the job's model.")
    var model: String?

    @Option(help: "Directory caching downloaded model packages (default: <data-dir>/../model-cache).")
    var cacheDir: String?

    @Option(help: "Directory keeping finished results until the coordinator has them (default: <data-dir>-state).")
    var stateDir: String?

    @Option(help: "Longest pause in seconds between two tries to reach the coordinator (1–600).")
    var maxRetryDelay: Double = 30

    @Option(help: "Power draw in watts, for energy estimates.")
    var powerWatts: Double = 5

    @Option(help: "Simulated slowdown factor (2 = work takes twice as long), standing in for slower hardware.")
    var slowdown: Double = 1

    @Option(help: "Seconds each long-poll waits for a job (1–60).")
    var pollWait: Int = 30

    @Option(help: "Exit after this many jobs (0 = run until stopped).")
    var maxJobs: Int = 0

    @Option(help: "Battery charge in percent to report (omit for mains-powered devices).")
    var batteryPct: Double?

    @Option(help: "Address of a nearby edge server the network may be split with.")
    var edgeServer: String?

    @Option(help: "Link bandwidth to the edge server in Mbit/s.")
    var bandwidthMbps: Double?

    @Option(help: "Round-trip time to the edge server in ms.")
    var rttMs: Double?

    @Option(help: "Throughput of the edge server in GFLOP/s (the coordinator assumes 100 when omitted).")
    var edgeServerGflops: Double?

    @Option(help: "URL of the edge server's runtime (`fleetadapt-edge`): when this device's config cuts the network, latency is measured split through it.")
    var edgeURL: String?

    @Option(help: "PEM file of the certificate authorities to trust for an https coordinator and edge server (default: the system's). The server's name is always checked against the URL.")
    var caFile: String?

    // MARK: Images, spool and inference service

    @Option(help: "Image folder data: how many of the newest JPEG/PNG files a job adapts on (the spool's rolling window).")
    var window: Int = 1024

    @Flag(help: "The --data-dir image folder is a spool: read again for every job, so frames written into it while the agent runs are used (nothing is deleted).")
    var watch = false

    @Option(help: "Serve predictions on HOST:PORT (POST /v1/predict, GET /metrics; contract openapi/agent.yaml), e.g. 127.0.0.1:9100.")
    var serve: String?

    @Option(help: "Serve predictions on a Unix-domain socket at PATH as well (or only, without --serve): created mode 0660, removed on exit; a stale socket is replaced, any other file refused.")
    var serveSocket: String?

    @Option(help: "With --serve/--serve-socket: micro-batching window in ms (0 = off): a single-input predict waits up to this long for others to share one forward.")
    var serveBatchWindowMs: Double = 0

    @Option(help: "With --serve-batch-window-ms: most inputs one micro-batched forward takes (1–64).")
    var serveMaxBatch: Int = 16

    @Option(help: "With --serve/--serve-socket: HTTP worker threads of the inference service (1–64); requests beyond them queue.")
    var serveThreads: Int = 4

    @Option(help: "With --serve/--serve-socket: seconds between two reads of the coordinator's config, which the served network follows (0.05–3600).")
    var configPollSeconds: Double = 5

    @Option(help: "With --serve and a split config: milliseconds a prediction waits for the edge server before running the whole network here.")
    var edgeDeadlineMs: Double = 250

    @Option(help: "With --serve: seconds between two drift reports to the coordinator at most (the window's entropy and confidence against the baseline; sent only when it changed; 0 = never).")
    var driftReportInterval: Double = 30

    func validateServing() throws {
        guard (1...1_000_000).contains(window) else { throw ValidationError("--window must be 1–1000000") }
        if let serve, ServingConfiguration.parse(serve) == nil { throw ValidationError("--serve must be HOST:PORT, e.g. 127.0.0.1:9100") }
        if let serveSocket, serveSocket.isEmpty || serveSocket.utf8.count > 107 { throw ValidationError("--serve-socket must be a path of 1–107 bytes") }
        guard serveBatchWindowMs >= 0 && serveBatchWindowMs <= 1000 else { throw ValidationError("--serve-batch-window-ms must be 0–1000") }
        guard (1...64).contains(serveThreads) else { throw ValidationError("--serve-threads must be 1–64") }
        guard (1...64).contains(serveMaxBatch) else { throw ValidationError("--serve-max-batch must be 1–64") }
        guard configPollSeconds >= 0.05 && configPollSeconds <= 3600 else { throw ValidationError("--config-poll-seconds must be 0.05–3600") }
        guard edgeDeadlineMs > 0 && edgeDeadlineMs <= 60_000 else { throw ValidationError("--edge-deadline-ms must be 1–60000") }
        guard driftReportInterval == 0 || (1...86_400).contains(driftReportInterval) else {
            throw ValidationError("--drift-report-interval must be 0 (never) or 1–86400 seconds")
        }
    }

    func applyServing(to configuration: inout AgentConfiguration) {
        configuration.imageWindow = window
        configuration.watch = watch
        configuration.driftReportInterval = driftReportInterval
        var serving: ServingConfiguration?
        if let serve { serving = ServingConfiguration.parse(serve) }
        if serve == nil, serveSocket != nil {
            serving = ServingConfiguration()
            serving?.listensOnTCP = false
        }
        if var serving {
            serving.socketPath = serveSocket
            serving.edgeDeadlineMs = edgeDeadlineMs
            serving.batchWindowMs = serveBatchWindowMs
            serving.maxBatch = serveMaxBatch
            serving.threads = serveThreads
            serving.configPollSeconds = configPollSeconds
            configuration.serving = serving
        }
    }

    // MARK: Validation and run

    func validate() throws {
        try validateServing()
        guard (1...60).contains(pollWait) else { throw ValidationError("--poll-wait must be 1–60") }
        guard slowdown >= 1 else { throw ValidationError("--slowdown must be at least 1") }
        guard powerWatts > 0 else { throw ValidationError("--power-watts must be positive") }
        guard maxJobs >= 0 else { throw ValidationError("--max-jobs must not be negative") }
        guard (1...600).contains(maxRetryDelay) else { throw ValidationError("--max-retry-delay must be 1–600 seconds") }
        if let edgeURL, URL(string: edgeURL)?.scheme.map({ ["http", "https"].contains($0) }) != true {
            throw ValidationError("--edge-url must be an http(s) URL")
        }
        if enrolTokenFile != nil {
            let missing = [hardwareClass == nil ? "--hardware-class" : nil, gflops == nil ? "--gflops" : nil,
                           latencyBudgetMs == nil ? "--latency-budget-ms" : nil, memoryBudgetMb == nil ? "--memory-budget-mb" : nil]
            if let flag = missing.compactMap({ $0 }).first { throw ValidationError("\(flag) is needed with --enrol-token-file") }
            if let issue = registration.validate().first { throw ValidationError("enrolment: \(issue.field): \(issue.message)") }
        }
        var v = Validator()
        context.validate(into: &v, prefix: "")
        if let issue = v.issues.first { throw ValidationError("--\(issue.field.drop { $0 == "." }.replacingOccurrences(of: "_", with: "-")): \(issue.message)") }
    }

    var context: DeviceContext {
        DeviceContext(batteryPct: batteryPct, bandwidthMbps: bandwidthMbps, rttMs: rttMs, edgeServer: edgeServer, edgeServerGFLOPS: edgeServerGflops)
    }

    /// What the device enrols as (with `--enrol-token-file`).
    var registration: DeviceRegistration {
        DeviceRegistration(name: name ?? ProcessInfo.processInfo.hostName,
                           hardware: Hardware(class: hardwareClass ?? "", gflops: gflops ?? 0, memoryMB: memoryMb ?? Self.totalMemoryMB() ?? 0),
                           constraints: Constraints(latencyBudgetMs: latencyBudgetMs ?? 0, memoryBudgetMB: memoryBudgetMb ?? 0), context: context)
    }

    /// `MemTotal` of /proc/meminfo in MiB.
    static func totalMemoryMB() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) }.map { $0 / 1024 }
    }

    func run() throws {
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw ValidationError("--ca-file: cannot read \(caFile)")
        }
        var resolved = token ?? ProcessInfo.processInfo.environment["FLEETADAPT_TOKEN"]
        if resolved == nil, let tokenFile {
            resolved = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let stateDirectory = stateDir ?? AgentConfiguration.defaultStateDirectory(dataDirectory: dataDir)
        if resolved == nil { resolved = AgentEnrolment.storedToken(stateDirectory: stateDirectory) }
        if resolved == nil, let enrolTokenFile {
            resolved = try AgentEnrolment.token(stateDirectory: stateDirectory, enrolTokenFile: enrolTokenFile, coordinatorURL: coordinator,
                                                tls: ClientTLS(caFile: caFile), registration: registration, maxRetryDelay: maxRetryDelay,
                                                log: AgentRunner.writeLine)
        }
        guard let resolved, !resolved.isEmpty else {
            throw ValidationError("no token: use --token, FLEETADAPT_TOKEN, --token-file or --enrol-token-file")
        }
        var configuration = AgentConfiguration(
            coordinatorURL: coordinator, token: resolved, dataDirectory: dataDir, modelPath: model,
            cacheDirectory: cacheDir ?? (URL(fileURLWithPath: dataDir).deletingLastPathComponent().path + "/model-cache"), powerWatts: powerWatts,
            slowdown: slowdown, pollWait: pollWait, maxJobs: maxJobs, context: context, edgeURL: edgeURL,
            stateDirectory: stateDir, maxRetryDelay: maxRetryDelay)
        configuration.tls = ClientTLS(caFile: caFile)
        applyServing(to: &configuration)
        let runner = AgentRunner(configuration: configuration, log: AgentLog.line)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "fleetadapt-agent.signals")
        let sources = [SIGTERM, SIGINT].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler { runner.stop() }
            s.resume()
            return s
        }
        defer { sources.forEach { $0.cancel() } }
        let done = try runner.run()
        AgentLog.line("agent: stopped after \(done) job(s)")
    }
}
