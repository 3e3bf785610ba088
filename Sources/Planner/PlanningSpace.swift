/// The costs of one variant of one block, measured on the reference machine.
public struct VariantProfile: Codable, Sendable, Equatable {
    public var id: String
    /// Latency on the reference machine (whose speed is `PlanningSpace.referenceGFLOPS`).
    public var referenceLatencyMs: Double
    public var flops: Double
    public var paramBytes: Int
    public var peakActivationBytes: Int
    /// Bytes of the block's output tensor: what crosses the link when the model is cut after this block.
    public var outputBytes: Int
    /// Estimated accuracy lost against the original block (LegoDNN's additive estimate).
    public var accuracyDrop: Double

    public init(id: String, referenceLatencyMs: Double, flops: Double, paramBytes: Int, peakActivationBytes: Int,
                outputBytes: Int, accuracyDrop: Double) {
        self.id = id
        self.referenceLatencyMs = referenceLatencyMs
        self.flops = flops
        self.paramBytes = paramBytes
        self.peakActivationBytes = peakActivationBytes
        self.outputBytes = outputBytes
        self.accuracyDrop = accuracyDrop
    }
}

/// Parts every combination runs: the stem before the first block and the head after the last.
public struct FixedCost: Codable, Sendable, Equatable {
    public var referenceLatencyMs: Double
    public var paramBytes: Int
    public var peakActivationBytes: Int
    /// Bytes of the stem's output (what crosses the link when everything after the stem runs on the server).
    public var stemOutputBytes: Int

    public init(referenceLatencyMs: Double, paramBytes: Int, peakActivationBytes: Int, stemOutputBytes: Int) {
        self.referenceLatencyMs = referenceLatencyMs
        self.paramBytes = paramBytes
        self.peakActivationBytes = peakActivationBytes
        self.stemOutputBytes = stemOutputBytes
    }
}

/// A chain of block positions, each with interchangeable variants: the scaling space of one model.
public struct PlanningSpace: Codable, Sendable, Equatable {
    public var blockNames: [String]
    public var blocks: [[VariantProfile]]
    public var baseAccuracy: Double
    public var referenceGFLOPS: Double
    public var stem: FixedCost
    public var head: FixedCost

    public init(blockNames: [String], blocks: [[VariantProfile]], baseAccuracy: Double, referenceGFLOPS: Double,
                stem: FixedCost, head: FixedCost) {
        self.blockNames = blockNames
        self.blocks = blocks
        self.baseAccuracy = baseAccuracy
        self.referenceGFLOPS = referenceGFLOPS
        self.stem = stem
        self.head = head
    }

    /// Number of distinct combinations (product of the variant counts).
    public var combinationCount: Int { blocks.reduce(1) { $0 * $1.count } }
}
