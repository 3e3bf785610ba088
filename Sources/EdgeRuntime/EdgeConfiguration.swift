import FleetClient
import Foundation
import HTTPServer

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
    /// How long the coordinator's word that a session's device still exists is trusted: an inference request
    /// after that asks the coordinator again (with the request's token), and a device it no longer accepts
    /// (decommissioned, token revoked) loses its session with 401. 0 asks on every request.
    public var sessionConfirmationTTL: Duration
    /// HTTPS for devices' requests (nil: plain HTTP, for loopback or behind a terminating proxy).
    public var tls: TLSConfiguration?
    /// How the coordinator's certificate is verified when `coordinatorURL` is https.
    public var coordinatorTLS = ClientTLS()

    /// The default `sessionConfirmationTTL`: a decommissioned device is cut off within 3 s, and a busy device
    /// costs the coordinator one config read per 3 s.
    public static let defaultSessionConfirmationTTL: Duration = .seconds(3)

    public init(coordinatorURL: String, host: String = "127.0.0.1", port: Int = 8090, cacheDirectory: String,
                threadPoolSize: Int = 4, maxSessions: Int = 256, maxBatch: Int = 256, accessLog: Bool = true,
                sessionConfirmationTTL: Duration = defaultSessionConfirmationTTL) {
        self.coordinatorURL = coordinatorURL
        self.host = host
        self.port = port
        self.cacheDirectory = cacheDirectory
        self.threadPoolSize = threadPoolSize
        self.maxSessions = maxSessions
        self.maxBatch = maxBatch
        self.accessLog = accessLog
        self.sessionConfirmationTTL = sessionConfirmationTTL
    }
}
