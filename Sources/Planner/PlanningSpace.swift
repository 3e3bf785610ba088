/// One way to run one block position: a pruned, distilled or skipped variant of the original block.
///
/// Costs are measured once, offline, on a reference machine; the planner rescales latency per device.
public struct VariantProfile: Codable, Sendable, Hashable {
    /// Stable name in the model package, e.g. "s0", "s25", "s50", "s75", "skip".
    public var id: String
    /// Latency on the reference machine, which runs `PlanningSpace.referenceGFLOPS`.
    public var referenceLatencyMs: Double
    public var flops: Double
    public var paramBytes: Int
    public var peakActivationBytes: Int
    /// Size of the tensor this block hands on: what crosses the link if the model is cut after this block.
    public var outputBytes: Int
    /// Additive accuracy-drop estimate (LegoDNN style): base accuracy minus the sum of drops estimates a combination.
    public var accuracyDrop: Double

    public init(id: String, referenceLatencyMs: Double, flops: Double, paramBytes: Int,
                peakActivationBytes: Int, outputBytes: Int, accuracyDrop: Double) {
        self.id = id
        self.referenceLatencyMs = referenceLatencyMs
        self.flops = flops
        self.paramBytes = paramBytes
        self.peakActivationBytes = peakActivationBytes
        self.outputBytes = outputBytes
        self.accuracyDrop = accuracyDrop
    }
}

/// The variants that may fill one position of the block chain.
public struct BlockOption: Codable, Sendable, Hashable {
    public var name: String
    public var variants: [VariantProfile]

    public init(name: String, variants: [VariantProfile]) {
        self.name = name
        self.variants = variants
    }
}

/// A part of the network that never changes (stem before block 0, head after the last block).
public struct FixedCost: Codable, Sendable, Hashable {
    public var referenceLatencyMs: Double
    public var flops: Double
    public var paramBytes: Int
    public var peakActivationBytes: Int

    public init(referenceLatencyMs: Double = 0, flops: Double = 0, paramBytes: Int = 0, peakActivationBytes: Int = 0) {
        self.referenceLatencyMs = referenceLatencyMs
        self.flops = flops
        self.paramBytes = paramBytes
        self.peakActivationBytes = peakActivationBytes
    }
}

/// Everything the planner may choose from, independent of any package format.
///
/// The stem always runs on the device (it reads the sensor); the head runs wherever the last block runs.
public struct PlanningSpace: Codable, Sendable, Hashable {
    /// Ordered chain of block positions.
    public var blocks: [BlockOption]
    public var baseAccuracy: Double
    /// Throughput of the machine on which `referenceLatencyMs` were measured.
    public var referenceGFLOPS: Double
    public var stem: FixedCost
    public var head: FixedCost
    /// Tensor that crosses the link when the model is cut before block 0 (the stem's output).
    public var inputBytes: Int

    public init(blocks: [BlockOption], baseAccuracy: Double, referenceGFLOPS: Double,
                stem: FixedCost = FixedCost(), head: FixedCost = FixedCost(), inputBytes: Int) {
        self.blocks = blocks
        self.baseAccuracy = baseAccuracy
        self.referenceGFLOPS = referenceGFLOPS
        self.stem = stem
        self.head = head
        self.inputBytes = inputBytes
    }

    /// Number of distinct variant combinations (ignoring partition).
    public var combinationCount: Double {
        blocks.reduce(1.0) { $0 * Double($1.variants.count) }
    }

    /// Rejects spaces the planner cannot reason about, naming the first offending field.
    public func validate() throws(PlanningError) {
        guard !blocks.isEmpty else { throw .invalidSpace("blocks: at least one block position is required") }
        guard referenceGFLOPS.isFinite, referenceGFLOPS > 0 else {
            throw .invalidSpace("referenceGFLOPS: must be a positive finite number")
        }
        guard baseAccuracy.isFinite else { throw .invalidSpace("baseAccuracy: must be finite") }
        guard inputBytes >= 0 else { throw .invalidSpace("inputBytes: must not be negative") }
        for (name, fixed) in [("stem", stem), ("head", head)] {
            guard fixed.referenceLatencyMs.isFinite, fixed.referenceLatencyMs >= 0,
                  fixed.paramBytes >= 0, fixed.peakActivationBytes >= 0 else {
                throw .invalidSpace("\(name): latency and sizes must be finite and not negative")
            }
        }
        var combinations: Double = 1
        for (b, block) in blocks.enumerated() {
            guard !block.variants.isEmpty, block.variants.count <= 255 else {
                throw .invalidSpace("blocks[\(b)].variants: between 1 and 255 variants are required")
            }
            combinations *= Double(block.variants.count)
            for (v, variant) in block.variants.enumerated() {
                let field = "blocks[\(b)].variants[\(v)]"
                guard variant.referenceLatencyMs.isFinite, variant.referenceLatencyMs >= 0 else {
                    throw .invalidSpace("\(field).referenceLatencyMs: must be finite and not negative")
                }
                guard variant.paramBytes >= 0, variant.peakActivationBytes >= 0, variant.outputBytes >= 0 else {
                    throw .invalidSpace("\(field): byte sizes must not be negative")
                }
                guard variant.accuracyDrop.isFinite, abs(variant.accuracyDrop) < 1e6 else {
                    throw .invalidSpace("\(field).accuracyDrop: must be finite")
                }
            }
        }
        // Combinations are named by a mixed-radix code in a UInt64.
        guard combinations < 9.0e18 else { throw .invalidSpace("blocks: more than 9e18 combinations") }
    }
}
