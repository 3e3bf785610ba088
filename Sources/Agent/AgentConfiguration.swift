import FleetAPI
import FleetClient

/// How one agent process runs: where the coordinator is, who it is, and what the device holds.
public struct AgentConfiguration: Sendable {
    public var coordinatorURL: String
    public var token: String
    /// Directory holding the device's local data (`data.safetensors`, see `LocalDataset`).
    public var dataDirectory: String
    /// A local model file that overrides downloads (for offline devices); nil downloads the job's model.
    public var modelPath: String?
    /// Where downloaded model packages are cached, by SHA-256.
    public var cacheDirectory: String
    /// Power draw in watts, for the energy estimate of training (energy ≈ time × power).
    public var powerWatts: Double
    /// Simulated slowdown: each training step and measurement takes this many times as long (slower hardware).
    public var slowdown: Double
    /// Seconds a long-poll waits for a job.
    public var pollWait: Int
    /// Stop after this many jobs (0 = run until SIGTERM).
    public var maxJobs: Int
    /// What the device knows about its situation beyond free memory (battery, link, edge server), reported at
    /// start; the planner uses it to choose the variants and the split point.
    public var context: DeviceContext = DeviceContext()
    /// URL of the edge server's runtime (`fleetadapt-edge`). When the device's config cuts the network, the agent
    /// runs its prefix, sends the cut features there, and reports that end-to-end latency.
    public var edgeURL: String?
    /// Where finished results (result JSON and adapter artifact) wait until the coordinator has them, so neither an
    /// outage nor a restart of the agent loses them. Holds trained weights: created 0700.
    public var stateDirectory: String
    /// Longest pause between two tries to reach the coordinator (seconds; backoff doubles from 0.5 s up to it).
    public var maxRetryDelay: Double = 30
    /// Seconds between two heartbeats of a running job (each renews the lease and reports the job's progress).
    public var heartbeatInterval: Double = 1
    /// How an https coordinator and edge server are verified (the system's CAs, or those of `caFile`).
    public var tls = ClientTLS()
    /// An image-folder data directory: how many of its newest images a job uses (the spool's rolling window).
    public var imageWindow: Int = 1024
    /// An image-folder data directory is a spool: it is read again for every job (and new frames feed the drift
    /// window of the inference service). Nothing in it is ever deleted.
    public var watch = false
    /// The inference service (`InferenceService`), nil when the agent does not serve.
    public var serving: ServingConfiguration?
    /// With `serving`: seconds between two drift reports to the coordinator at most (`DriftReporter`; 0: none).
    public var driftReportInterval: Double = 30

    public init(coordinatorURL: String, token: String, dataDirectory: String, modelPath: String? = nil, cacheDirectory: String, powerWatts: Double = 5,
                slowdown: Double = 1, pollWait: Int = 30, maxJobs: Int = 0, context: DeviceContext = DeviceContext(), edgeURL: String? = nil,
                stateDirectory: String? = nil, maxRetryDelay: Double = 30) {
        self.coordinatorURL = coordinatorURL
        self.token = token
        self.dataDirectory = dataDirectory
        self.modelPath = modelPath
        self.cacheDirectory = cacheDirectory
        self.powerWatts = powerWatts
        self.slowdown = slowdown
        self.pollWait = pollWait
        self.maxJobs = maxJobs
        self.context = context
        self.edgeURL = edgeURL
        self.stateDirectory = stateDirectory ?? Self.defaultStateDirectory(dataDirectory: dataDirectory)
        self.maxRetryDelay = maxRetryDelay
    }

    /// `<data-dir>-state`: one per data directory (so one per device), beside it.
    public static func defaultStateDirectory(dataDirectory: String) -> String {
        (dataDirectory.hasSuffix("/") ? String(dataDirectory.dropLast()) : dataDirectory) + "-state"
    }
}
