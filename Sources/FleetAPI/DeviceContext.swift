/// What a device reports about its runtime situation; every field is optional because devices
/// know different things (a mains-powered camera has no battery).
public struct DeviceContext: Codable, Sendable, Equatable {
    public var batteryPct: Double?
    public var bandwidthMbps: Double?
    public var rttMs: Double?
    public var freeMemoryMB: Double?
    public var edgeServer: String?
    /// Throughput of the edge server, when the device knows it; the planner assumes
    /// `defaultEdgeServerGFLOPS` for a named server that does not say.
    public var edgeServerGFLOPS: Double?

    public static let defaultEdgeServerGFLOPS: Double = 100

    public init(batteryPct: Double? = nil, bandwidthMbps: Double? = nil, rttMs: Double? = nil,
                freeMemoryMB: Double? = nil, edgeServer: String? = nil, edgeServerGFLOPS: Double? = nil) {
        self.batteryPct = batteryPct
        self.bandwidthMbps = bandwidthMbps
        self.rttMs = rttMs
        self.freeMemoryMB = freeMemoryMB
        self.edgeServer = edgeServer
        self.edgeServerGFLOPS = edgeServerGFLOPS
    }

    enum CodingKeys: String, CodingKey {
        case batteryPct = "battery_pct"
        case bandwidthMbps = "bandwidth_mbps"
        case rttMs = "rtt_ms"
        case freeMemoryMB = "free_memory_mb"
        case edgeServer = "edge_server"
        case edgeServerGFLOPS = "edge_server_gflops"
    }

    public func validate(into v: inout Validator, prefix: String = "context") {
        v.number(batteryPct, "\(prefix).battery_pct", min: 0, max: 100, required: false)
        v.number(bandwidthMbps, "\(prefix).bandwidth_mbps", min: 0, max: 1_000_000, required: false)
        v.number(rttMs, "\(prefix).rtt_ms", min: 0, max: 600_000, required: false)
        v.number(freeMemoryMB, "\(prefix).free_memory_mb", min: 0, max: Double(Hardware.maxMemoryMB), required: false)
        v.number(edgeServerGFLOPS, "\(prefix).edge_server_gflops", min: Hardware.minGFLOPS, max: 1_000_000, required: false)
        if let edgeServer {
            v.text(edgeServer, "\(prefix).edge_server", maxLength: 253)
            if edgeServer.utf8.contains(where: { $0 < 0x21 || $0 == 0x7f }) {
                v.fail("\(prefix).edge_server", "must not contain spaces or control characters")
            }
        }
    }
}
