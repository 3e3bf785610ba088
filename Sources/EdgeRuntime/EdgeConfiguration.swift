import Foundation

/// What an edge server needs to start; `fleetadapt-edge` fills it from flags.
public struct EdgeConfiguration: Sendable {
    /// The coordinator that vouches for device tokens, says where each device's network is cut, and serves packages.
    public var coordinatorURL: String
    public var host: String
    public var port: Int
    /// Downloaded model packages, by SHA-256.
    public var cacheDirectory: String
    public var threadPoolSize: Int
    /// Devices whose suffix is kept in memory at once (each holds a whole elastic network: about the package's
    /// size); the least recently used is dropped beyond it, and its device opens a new session.
    public var maxSessions: Int
    /// Largest batch one inference request may carry.
    public var maxBatch: Int
    public var accessLog: Bool

    public init(coordinatorURL: String, host: String = "127.0.0.1", port: Int = 8090, cacheDirectory: String,
                threadPoolSize: Int = 4, maxSessions: Int = 256, maxBatch: Int = 256, accessLog: Bool = true) {
        self.coordinatorURL = coordinatorURL
        self.host = host
        self.port = port
        self.cacheDirectory = cacheDirectory
        self.threadPoolSize = threadPoolSize
        self.maxSessions = maxSessions
        self.maxBatch = maxBatch
        self.accessLog = accessLog
    }
}
