/// A wireless link from the device to a nearby edge server that can run the rest of the network.
public struct EdgeLink: Codable, Sendable, Hashable {
    public var bandwidthMbps: Double
    public var rttMs: Double
    public var serverGFLOPS: Double
    /// Radio power while transmitting; energy of a cut = txPowerWatts × serialisation time (rtt excluded: the
    /// radio mostly idles while waiting for the answer).
    public var txPowerWatts: Double

    public static let defaultTxPowerWatts: Double = 1

    public init(bandwidthMbps: Double, rttMs: Double, serverGFLOPS: Double,
                txPowerWatts: Double = EdgeLink.defaultTxPowerWatts) {
        self.bandwidthMbps = bandwidthMbps
        self.rttMs = rttMs
        self.serverGFLOPS = serverGFLOPS
        self.txPowerWatts = txPowerWatts
    }

    private enum CodingKeys: String, CodingKey { case bandwidthMbps, rttMs, serverGFLOPS, txPowerWatts }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bandwidthMbps = try c.decode(Double.self, forKey: .bandwidthMbps)
        rttMs = try c.decode(Double.self, forKey: .rttMs)
        serverGFLOPS = try c.decode(Double.self, forKey: .serverGFLOPS)
        txPowerWatts = try c.decodeIfPresent(Double.self, forKey: .txPowerWatts) ?? Self.defaultTxPowerWatts
    }

    /// Serialisation time of `bytes` on the link, without the round trip.
    @inlinable
    public func transmitMs(bytes: Int) -> Double {
        Double(bytes) * 8 / (bandwidthMbps * 1e6) * 1000
    }
}

/// What to minimise among plans of equal estimated accuracy (ties within 1e-9).
public enum PartitionObjective: String, Codable, Sendable, Hashable {
    /// Highest accuracy; among ties the lowest end-to-end latency.
    case accuracy
    /// Highest accuracy; among ties the lowest device energy (compute + radio).
    case accuracyThenEnergy
}

/// One device's resources and budgets at planning time.
///
/// Cost rules (all documented here so the coordinator and the agent agree):
/// * latency of a variant = `measuredLatencyMs[b][v]` when the device measured it (AdaptiveNet), else
///   `referenceLatencyMs × referenceGFLOPS / gflops`; stem and head are always scaled from the reference;
/// * energy (mJ) = device compute ms × `powerWatts` + radio serialisation ms × `edge.txPowerWatts`;
/// * battery: below `lowBatteryThresholdPct` the energy budget is scaled by `batteryPct / 20`
///   (at 10 % half the budget remains, at 0 % nothing); without an energy budget the battery changes nothing;
/// * memory (MB = 2^20 bytes) = parameters of everything on the device + the largest peak activation there;
/// * accuracy drops are resolved to 1e-9 and latency terms to 1 ns (reference or measured), so sums are exact and
///   ties break the same way in every search path.
public struct DeviceProfile: Codable, Sendable, Hashable {
    public var gflops: Double
    public var hardwareClass: String
    public var powerWatts: Double
    public var latencyBudgetMs: Double
    public var memoryBudgetMB: Double
    public var energyBudgetMJ: Double?
    public var batteryPct: Double?
    /// `[blockIndex][variantIndex]` latencies measured on this device; they replace the scaled reference figures.
    public var measuredLatencyMs: [[Double]]?
    public var edge: EdgeLink?
    public var objective: PartitionObjective

    public static let lowBatteryThresholdPct: Double = 20
    public static let bytesPerMB: Double = 1_048_576

    public init(gflops: Double, hardwareClass: String, powerWatts: Double? = nil, latencyBudgetMs: Double,
                memoryBudgetMB: Double, energyBudgetMJ: Double? = nil, batteryPct: Double? = nil,
                measuredLatencyMs: [[Double]]? = nil, edge: EdgeLink? = nil, objective: PartitionObjective = .accuracy) {
        self.gflops = gflops
        self.hardwareClass = hardwareClass
        self.powerWatts = powerWatts ?? HardwareClass.powerWatts(for: hardwareClass)
        self.latencyBudgetMs = latencyBudgetMs
        self.memoryBudgetMB = memoryBudgetMB
        self.energyBudgetMJ = energyBudgetMJ
        self.batteryPct = batteryPct
        self.measuredLatencyMs = measuredLatencyMs
        self.edge = edge
        self.objective = objective
    }

    private enum CodingKeys: String, CodingKey {
        case gflops, hardwareClass, powerWatts, latencyBudgetMs, memoryBudgetMB, energyBudgetMJ, batteryPct
        case measuredLatencyMs, edge, objective
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        gflops = try c.decode(Double.self, forKey: .gflops)
        hardwareClass = try c.decode(String.self, forKey: .hardwareClass)
        powerWatts = try c.decodeIfPresent(Double.self, forKey: .powerWatts)
            ?? HardwareClass.powerWatts(for: hardwareClass)
        latencyBudgetMs = try c.decode(Double.self, forKey: .latencyBudgetMs)
        memoryBudgetMB = try c.decode(Double.self, forKey: .memoryBudgetMB)
        energyBudgetMJ = try c.decodeIfPresent(Double.self, forKey: .energyBudgetMJ)
        batteryPct = try c.decodeIfPresent(Double.self, forKey: .batteryPct)
        measuredLatencyMs = try c.decodeIfPresent([[Double]].self, forKey: .measuredLatencyMs)
        edge = try c.decodeIfPresent(EdgeLink.self, forKey: .edge)
        objective = try c.decodeIfPresent(PartitionObjective.self, forKey: .objective) ?? .accuracy
    }

    /// The energy budget after the low-battery rule; nil when the device has no energy budget.
    public var effectiveEnergyBudgetMJ: Double? {
        guard let budget = energyBudgetMJ else { return nil }
        guard let battery = batteryPct, battery < Self.lowBatteryThresholdPct else { return budget }
        return budget * max(0, battery) / Self.lowBatteryThresholdPct
    }

    /// Rejects profiles the cost model cannot use, naming the field.
    public func validate(for space: PlanningSpace) throws(PlanningError) {
        guard gflops.isFinite, gflops > 0 else { throw .invalidDevice("gflops: must be a positive finite number") }
        guard powerWatts.isFinite, powerWatts >= 0 else { throw .invalidDevice("powerWatts: must not be negative") }
        guard !latencyBudgetMs.isNaN, latencyBudgetMs >= 0 else {
            throw .invalidDevice("latencyBudgetMs: must not be negative")
        }
        guard !memoryBudgetMB.isNaN, memoryBudgetMB >= 0 else {
            throw .invalidDevice("memoryBudgetMB: must not be negative")
        }
        if let e = energyBudgetMJ, e.isNaN || e < 0 { throw .invalidDevice("energyBudgetMJ: must not be negative") }
        if let b = batteryPct, b.isNaN || b < 0 || b > 100 { throw .invalidDevice("batteryPct: must be in 0...100") }
        if let m = measuredLatencyMs {
            guard m.count == space.blocks.count else {
                throw .invalidDevice("measuredLatencyMs: expected \(space.blocks.count) blocks, got \(m.count)")
            }
            for (b, row) in m.enumerated() {
                guard row.count == space.blocks[b].variants.count else {
                    throw .invalidDevice("measuredLatencyMs[\(b)]: expected \(space.blocks[b].variants.count) variants")
                }
                for x in row where !x.isFinite || x < 0 {
                    throw .invalidDevice("measuredLatencyMs[\(b)]: latencies must be finite and not negative")
                }
            }
        }
        if let e = edge {
            guard e.bandwidthMbps.isFinite, e.bandwidthMbps >= 0, e.rttMs.isFinite, e.rttMs >= 0,
                  e.serverGFLOPS.isFinite, e.serverGFLOPS > 0, e.txPowerWatts.isFinite, e.txPowerWatts >= 0 else {
                throw .invalidDevice("edge: bandwidth, rtt, tx power must be finite and not negative, serverGFLOPS positive")
            }
        }
    }
}
