/// Where a partitioned model is cut, and what each side costs.
public struct Partition: Codable, Sendable, Equatable {
    /// The device runs the stem and blocks 0...splitAfterBlock; −1 means only the stem.
    public var splitAfterBlock: Int
    public var deviceLatencyMs: Double
    public var transferMs: Double
    public var edgeLatencyMs: Double
}

public struct Prediction: Codable, Sendable, Equatable {
    public var accuracy: Double
    public var latencyMs: Double
    public var memoryMB: Double
    public var energyMJ: Double
}

public enum Budget: String, Codable, Sendable, CaseIterable {
    case latency, memory, energy
}

/// The planner's decision for one device, with the reason a person can read.
public struct Plan: Codable, Sendable, Equatable {
    /// Variant index per block position.
    public var variants: [Int]
    public var partition: Partition?
    public var predicted: Prediction
    public var feasible: Bool
    /// The budget that limits accuracy (or, when infeasible, the one violated most); nil when none does.
    public var bindingConstraint: Budget?
    public var reason: String
}
