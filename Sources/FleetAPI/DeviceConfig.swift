import Foundation

/// The variant a device runs at one block position.
public struct VariantChoice: Codable, Sendable, Equatable, Hashable {
    public var block: String
    public var variant: String

    public init(block: String, variant: String) {
        self.block = block
        self.variant = variant
    }
}

/// Where the network is cut between device and edge server.
public struct PartitionView: Codable, Sendable, Equatable, Hashable {
    /// The device runs the stem and blocks 0...split_after_block (−1: only the stem).
    public var splitAfterBlock: Int
    public var deviceLatencyMs: Double
    public var edgeLatencyMs: Double
    /// Serialisation of the cut tensor on the link plus the round trip.
    public var transferMs: Double

    public init(splitAfterBlock: Int, deviceLatencyMs: Double, edgeLatencyMs: Double, transferMs: Double) {
        self.splitAfterBlock = splitAfterBlock
        self.deviceLatencyMs = deviceLatencyMs
        self.edgeLatencyMs = edgeLatencyMs
        self.transferMs = transferMs
    }

    enum CodingKeys: String, CodingKey {
        case splitAfterBlock = "split_after_block"
        case deviceLatencyMs = "device_latency_ms"
        case edgeLatencyMs = "edge_latency_ms"
        case transferMs = "transfer_ms"
    }
}

/// Which adapters the device runs on top of its variants.
public struct AdapterChoice: Codable, Sendable, Equatable, Hashable {
    public enum Source: String, Codable, Sendable { case local, aggregated }

    public var domainID: UUID
    /// `local`: the adapters this device trained itself; `aggregated`: the domain's averaged adapters.
    public var source: Source
    /// Version of the domain's aggregated adapter (for `aggregated`).
    public var version: Int?

    public init(domainID: UUID, source: Source, version: Int?) {
        self.domainID = domainID
        self.source = source
        self.version = version
    }

    enum CodingKeys: String, CodingKey {
        case source, version
        case domainID = "domain_id"
    }
}

/// The planner's estimates for a config.
public struct PredictedCost: Codable, Sendable, Equatable, Hashable {
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

    enum CodingKeys: String, CodingKey {
        case accuracy
        case latencyMs = "latency_ms"
        case memoryMB = "memory_mb"
        case energyMJ = "energy_mj"
    }
}

/// A planning decision: what the device runs and why. Stored per config version; `POST /v1/plan` answers one
/// without storing it.
public struct PlanDecision: Codable, Sendable, Equatable, Hashable {
    public var modelID: UUID
    public var variants: [VariantChoice]
    public var partition: PartitionView?
    public var adapters: AdapterChoice?
    public var predicted: PredictedCost
    /// Feasible: the budget that stops a more accurate plan (null when none is more accurate).
    /// Infeasible: the budget the closest combination violates most.
    public var bindingConstraint: String?
    public var feasible: Bool
    public var reason: String
    /// Whether the latencies came from the device's own measurements (a `profile` job) or the package's
    /// reference figures scaled by its GFLOP/s.
    public var latencySource: String

    public init(modelID: UUID, variants: [VariantChoice], partition: PartitionView?, adapters: AdapterChoice?,
                predicted: PredictedCost, bindingConstraint: String?, feasible: Bool, reason: String, latencySource: String) {
        self.modelID = modelID
        self.variants = variants
        self.partition = partition
        self.adapters = adapters
        self.predicted = predicted
        self.bindingConstraint = bindingConstraint
        self.feasible = feasible
        self.reason = reason
        self.latencySource = latencySource
    }

    /// What `sameConfig` compares, as one string: model, variants, split, adapters, feasibility. The config store
    /// builds the same string in SQL from stored decisions, so a fleet re-plan compares without decoding them.
    public var identity: String {
        let split = partition.map { String($0.splitAfterBlock) } ?? ""
        let a = adapters.map { "\($0.domainID.uuidString.lowercased()):\($0.source.rawValue):\($0.version.map(String.init) ?? "")" } ?? "::"
        return "\(modelID.uuidString.lowercased())|\(variants.map(\.variant).joined(separator: "/"))|\(split)|\(a)|\(feasible)"
    }

    /// Two decisions are the same config when the device would run the same thing; estimates that move with
    /// the context (battery, bandwidth) do not make a new version.
    public func sameConfig(as other: PlanDecision) -> Bool {
        modelID == other.modelID && variants == other.variants && partition?.splitAfterBlock == other.partition?.splitAfterBlock
            && adapters == other.adapters && feasible == other.feasible
    }

    enum CodingKeys: String, CodingKey {
        case variants, partition, adapters, predicted, feasible, reason
        case modelID = "model_id"
        case bindingConstraint = "binding_constraint"
        case latencySource = "latency_source"
    }

    /// Absent parts are written as `null`, not left out, so clients can rely on every key being there.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelID, forKey: .modelID)
        try c.encode(variants, forKey: .variants)
        try c.encode(partition, forKey: .partition)
        try c.encode(adapters, forKey: .adapters)
        try c.encode(predicted, forKey: .predicted)
        try c.encode(bindingConstraint, forKey: .bindingConstraint)
        try c.encode(feasible, forKey: .feasible)
        try c.encode(reason, forKey: .reason)
        try c.encode(latencySource, forKey: .latencySource)
    }
}

/// A stored config version.
public struct DeviceConfigView: Codable, Sendable, Equatable {
    public var deviceID: UUID
    public var version: Int
    public var decision: PlanDecision
    /// What caused this version: registration, patch, context, model_published, adapters.
    public var trigger: String
    public var createdAt: Date

    public init(deviceID: UUID, version: Int, decision: PlanDecision, trigger: String, createdAt: Date) {
        self.deviceID = deviceID
        self.version = version
        self.decision = decision
        self.trigger = trigger
        self.createdAt = createdAt
    }

    public var etag: String { "\"c\(version)\"" }

    private enum CodingKeys: String, CodingKey {
        case version, trigger
        case deviceID = "device_id"
        case createdAt = "created_at"
    }

    /// Flat on the wire: `{device_id, version, model_id, variants, partition, adapters, predicted, …, trigger, created_at}`.
    public func encode(to encoder: any Encoder) throws {
        try decision.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(deviceID, forKey: .deviceID)
        try c.encode(version, forKey: .version)
        try c.encode(trigger, forKey: .trigger)
        try c.encode(createdAt, forKey: .createdAt)
    }

    public init(from decoder: any Decoder) throws {
        decision = try PlanDecision(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        deviceID = try c.decode(UUID.self, forKey: .deviceID)
        version = try c.decode(Int.self, forKey: .version)
        trigger = try c.decode(String.self, forKey: .trigger)
        createdAt = try c.decode(Date.self, forKey: .createdAt)
    }
}

/// `POST /v1/plan`: what a device with this profile would get, without storing anything.
public struct PlanRequest: Codable, Sendable, Equatable {
    public var modelID: UUID?
    public var hardware: Hardware
    public var constraints: Constraints
    public var context: DeviceContext?
    /// Per-variant latencies measured on such a device, `[block][variant]` in ms, as a `profile` job reports them.
    public var measuredLatenciesMs: [[Double]]?

    public init(modelID: UUID?, hardware: Hardware, constraints: Constraints, context: DeviceContext?, measuredLatenciesMs: [[Double]]?) {
        self.modelID = modelID
        self.hardware = hardware
        self.constraints = constraints
        self.context = context
        self.measuredLatenciesMs = measuredLatenciesMs
    }

    enum CodingKeys: String, CodingKey {
        case hardware, constraints, context
        case modelID = "model_id"
        case measuredLatenciesMs = "measured_latencies_ms"
    }

    public func validate() -> [ValidationIssue] {
        var v = Validator()
        hardware.validate(into: &v)
        constraints.validate(into: &v)
        context?.validate(into: &v)
        if let m = measuredLatenciesMs {
            if m.isEmpty || m.count > 64 { v.fail("measured_latencies_ms", "must list 1–64 blocks") }
            for (i, row) in m.enumerated() {
                if row.isEmpty || row.count > 64 { v.fail("measured_latencies_ms.\(i)", "must list 1–64 variants") }
                for (j, x) in row.enumerated() { v.number(x, "measured_latencies_ms.\(i).\(j)", min: 0, max: 1e7, minExclusive: true) }
            }
        }
        return v.issues
    }
}
