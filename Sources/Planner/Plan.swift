/// A device budget; also names the budget that binds or is violated.
public enum BudgetKind: String, Codable, Sendable, Hashable, CaseIterable {
    case latency, memory, energy
}

/// Where the chain is cut between the device and the edge server.
public struct Partition: Codable, Sendable, Hashable {
    /// The device runs the stem and blocks `0...splitAfterBlock`; −1 means only the stem runs on the device.
    public var splitAfterBlock: Int
    public var deviceLatencyMs: Double
    /// Serialisation of the crossing tensor plus the round trip.
    public var transferMs: Double
    public var edgeLatencyMs: Double

    public init(splitAfterBlock: Int, deviceLatencyMs: Double, transferMs: Double, edgeLatencyMs: Double) {
        self.splitAfterBlock = splitAfterBlock
        self.deviceLatencyMs = deviceLatencyMs
        self.transferMs = transferMs
        self.edgeLatencyMs = edgeLatencyMs
    }
}

/// Estimates for a plan under the cost rules of `DeviceProfile`.
public struct PlanPrediction: Codable, Sendable, Hashable {
    public var accuracy: Double
    public var latencyMs: Double
    public var memoryMB: Double
    public var energyMJ: Double

    public init(accuracy: Double, latencyMs: Double, memoryMB: Double, energyMJ: Double) {
        self.accuracy = accuracy
        self.latencyMs = latencyMs
        self.memoryMB = memoryMB
        self.energyMJ = energyMJ
    }
}

/// The planner's decision for one device, with the reason a human can read.
public struct Plan: Codable, Sendable, Hashable {
    /// Variant index per block position.
    public var variants: [Int]
    /// Variant ids per block position, for logs and configs.
    public var variantIDs: [String]
    /// nil: everything runs on the device.
    public var partition: Partition?
    public var predicted: PlanPrediction
    /// Feasible plan: the budget that stops a more accurate plan (nil when no combination is more accurate).
    /// Infeasible plan: the budget the closest combination violates most.
    public var bindingConstraint: BudgetKind?
    public var feasible: Bool
    public var reason: String

    public init(variants: [Int], variantIDs: [String], partition: Partition?, predicted: PlanPrediction,
                bindingConstraint: BudgetKind?, feasible: Bool, reason: String) {
        self.variants = variants
        self.variantIDs = variantIDs
        self.partition = partition
        self.predicted = predicted
        self.bindingConstraint = bindingConstraint
        self.feasible = feasible
        self.reason = reason
    }
}

/// A compact decision for fleet-wide re-planning: no arrays, no strings, so a million of them stay cheap.
///
/// Decode the variants with `PlanningFrontier.variants(ofCode:)`.
public struct PlanSummary: Sendable, Hashable {
    /// Mixed-radix code of the variant combination (block 0 is the most significant digit).
    public var code: UInt64
    /// nil: on the device only.
    public var splitAfterBlock: Int?
    public var accuracy: Double
    public var latencyMs: Double
    public var memoryMB: Double
    public var energyMJ: Double
    public var feasible: Bool
    /// For infeasible summaries, the budget the closest combination violates most.
    public var violated: BudgetKind?

    public init(code: UInt64, splitAfterBlock: Int?, accuracy: Double, latencyMs: Double, memoryMB: Double,
                energyMJ: Double, feasible: Bool, violated: BudgetKind?) {
        self.code = code
        self.splitAfterBlock = splitAfterBlock
        self.accuracy = accuracy
        self.latencyMs = latencyMs
        self.memoryMB = memoryMB
        self.energyMJ = energyMJ
        self.feasible = feasible
        self.violated = violated
    }
}
