/// A network link to an edge server that can run the rest of the model.
public struct EdgeLink: Codable, Sendable, Equatable {
    public var bandwidthMbps: Double
    public var rttMs: Double
    public var serverGFLOPS: Double

    public init(bandwidthMbps: Double, rttMs: Double, serverGFLOPS: Double) {
        self.bandwidthMbps = bandwidthMbps
        self.rttMs = rttMs
        self.serverGFLOPS = serverGFLOPS
    }

    /// Milliseconds to send `bytes` over the link: serialisation at the bandwidth plus one round trip.
    public func transferMs(_ bytes: Int) -> Double {
        guard bandwidthMbps > 0 else { return .infinity }
        return Double(bytes) * 8 / (bandwidthMbps * 1e6) * 1000 + rttMs
    }
}

/// What the planner knows of one device: its speed, power draw, budgets and context.
public struct DeviceProfile: Codable, Sendable, Equatable {
    public var gflops: Double
    public var powerWatts: Double
    public var latencyBudgetMs: Double
    public var memoryBudgetMB: Double
    public var energyBudgetMJ: Double?
    public var batteryPct: Double?
    /// Latency measured on the device per block and variant (AdaptiveNet); when present it replaces scaling.
    public var measuredLatencyMs: [[Double]]?
    public var edge: EdgeLink?

    public init(gflops: Double, powerWatts: Double, latencyBudgetMs: Double, memoryBudgetMB: Double,
                energyBudgetMJ: Double? = nil, batteryPct: Double? = nil, measuredLatencyMs: [[Double]]? = nil,
                edge: EdgeLink? = nil) {
        self.gflops = gflops
        self.powerWatts = powerWatts
        self.latencyBudgetMs = latencyBudgetMs
        self.memoryBudgetMB = memoryBudgetMB
        self.energyBudgetMJ = energyBudgetMJ
        self.batteryPct = batteryPct
        self.measuredLatencyMs = measuredLatencyMs
        self.edge = edge
    }

    /// Below this charge the energy budget shrinks in proportion (documented rule, see `effectiveEnergyBudgetMJ`).
    public static let lowBatteryPct = 20.0
    /// Radio power while transmitting a cut tensor, charged to the device's energy.
    public static let transmitWatts = 1.0

    /// The energy budget after the battery rule: under 20% charge it is scaled by battery/20, so a device
    /// at 5% may spend a quarter of its normal energy per inference. nil means unconstrained.
    public var effectiveEnergyBudgetMJ: Double? {
        guard let e = energyBudgetMJ else { return nil }
        guard let b = batteryPct, b < Self.lowBatteryPct else { return e }
        return e * max(0, b) / Self.lowBatteryPct
    }
}

/// Typical power draw under inference load per hardware class; energy ≈ device-side latency × power
/// (mJ = ms × W). Unknown classes use `defaultWatts`.
public enum HardwareClass {
    public static let powerWatts: [String: Double] = [
        "jetson-tx2": 7.5, "jetson-nano": 5, "jetson-orin": 15, "raspberry-pi-4": 4, "raspberry-pi-5": 6,
        "phone": 3, "x86-edge": 25, "mcu": 0.5,
    ]
    public static let defaultWatts = 5.0

    public static func power(_ hardwareClass: String) -> Double { powerWatts[hardwareClass] ?? defaultWatts }
}
