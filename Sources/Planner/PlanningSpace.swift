#if canImport(Glibc)
import Glibc  // exp, for the logistic link (the planner needs nothing else of Foundation)
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// This variant's term of the accuracy estimate: a combination's estimate is `PlanningSpace.accuracy(drop:)` of
    /// the sum of its variants' drops (base accuracy minus the sum, or through the space's `accuracyLink`).
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

/// How a combination's summed drop D reads as accuracy when the estimate is not simply base − D: the logistic link
/// floor + (ceiling − floor) σ(score − D), decreasing in D, so the planner's ranking by D is the ranking by accuracy.
public struct AccuracyLink: Codable, Sendable, Hashable {
    /// Lower asymptote (near chance accuracy).
    public var floor: Double
    /// Upper asymptote: 1, or just above the base accuracy when no combination does much better than the original.
    public var ceiling: Double
    /// The score of the all-original combination (D = 0).
    public var score: Double

    public init(floor: Double, ceiling: Double = 1, score: Double) {
        self.floor = floor
        self.ceiling = ceiling
        self.score = score
    }

    /// A space stored before the ceiling existed reads with ceiling 1.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        floor = try c.decode(Double.self, forKey: .floor)
        ceiling = try c.decodeIfPresent(Double.self, forKey: .ceiling) ?? 1
        score = try c.decode(Double.self, forKey: .score)
    }

    enum CodingKeys: String, CodingKey { case floor, ceiling, score }

    public func accuracy(drop d: Double) -> Double {
        let s = score - d
        let sigmoid = s >= 0 ? 1 / (1 + exp(-s)) : exp(s) / (1 + exp(s))
        return min(1, max(0, floor + (ceiling - floor) * sigmoid))
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
    /// nil: a combination's accuracy is baseAccuracy − Σ drops; else the link reads Σ drops (spaces stored before
    /// the link existed decode with nil).
    public var accuracyLink: AccuracyLink? = nil

    public init(blocks: [BlockOption], baseAccuracy: Double, referenceGFLOPS: Double,
                stem: FixedCost = FixedCost(), head: FixedCost = FixedCost(), inputBytes: Int, accuracyLink: AccuracyLink? = nil) {
        self.accuracyLink = accuracyLink
        self.blocks = blocks
        self.baseAccuracy = baseAccuracy
        self.referenceGFLOPS = referenceGFLOPS
        self.stem = stem
        self.head = head
        self.inputBytes = inputBytes
    }

    /// The estimated accuracy of a combination whose drops sum to `drop`: decreasing in `drop`.
    public func accuracy(drop: Double) -> Double {
        accuracyLink?.accuracy(drop: drop) ?? baseAccuracy - drop
    }

    /// Number of distinct variant combinations (ignoring partition).
    public var combinationCount: Double {
        blocks.reduce(1.0) { $0 * Double($1.variants.count) }
    }

    /// Largest number of block positions.
    public static let maxBlocks = 256
    /// Largest byte size of any one figure (parameters, peak activation, a tensor crossing the link): 1 TiB.
    public static let maxBytes = 1 << 40
    /// Largest reference latency of any one part (a variant, the stem, the head): 10⁶ ms.
    public static let maxLatencyMs = 1e6
    /// Largest FLOP count of any one part.
    public static let maxFLOPs = 1e18
    /// Largest magnitude of one variant's accuracy drop (and of the base accuracy).
    public static let maxAccuracyMagnitude = 1e3
    /// Largest reference throughput.
    public static let maxReferenceGFLOPS = 1e9

    /// Rejects spaces the planner cannot reason about, naming the first offending field.
    ///
    /// The bounds make every sum the planner forms unable to overflow: at most 258 parts (256 blocks, stem, head)
    /// of at most 2^40 bytes is under 2^49; of at most 10^15 ns (latencies, clamped) under 2.6·10^17; drops of at
    /// most 10^3 in units of 10^-9 under 2.6·10^14 per chain; combination codes stay below 9·10^18 < 2^64.
    public func validate() throws(PlanningError) {
        guard !blocks.isEmpty, blocks.count <= Self.maxBlocks else {
            throw .invalidSpace("blocks: 1...\(Self.maxBlocks) block positions are required")
        }
        guard referenceGFLOPS.isFinite, referenceGFLOPS > 0, referenceGFLOPS <= Self.maxReferenceGFLOPS else {
            throw .invalidSpace("referenceGFLOPS: must be positive and at most \(Self.maxReferenceGFLOPS)")
        }
        guard baseAccuracy.isFinite, abs(baseAccuracy) <= Self.maxAccuracyMagnitude else {
            throw .invalidSpace("baseAccuracy: must be finite, at most \(Self.maxAccuracyMagnitude) in magnitude")
        }
        if let link = accuracyLink {
            guard link.floor.isFinite, (0...0.5).contains(link.floor) else { throw .invalidSpace("accuracyLink.floor: must be in 0...0.5") }
            guard link.ceiling.isFinite, link.ceiling > link.floor, link.ceiling <= 1 else {
                throw .invalidSpace("accuracyLink.ceiling: must be above the floor and at most 1")
            }
            guard link.score.isFinite, abs(link.score) <= Self.maxAccuracyMagnitude else {
                throw .invalidSpace("accuracyLink.score: must be finite, at most \(Self.maxAccuracyMagnitude) in magnitude")
            }
        }
        try Self.checkBytes(inputBytes, "inputBytes")
        for (name, fixed) in [("stem", stem), ("head", head)] {
            try Self.checkLatency(fixed.referenceLatencyMs, "\(name).referenceLatencyMs")
            try Self.checkFLOPs(fixed.flops, "\(name).flops")
            try Self.checkBytes(fixed.paramBytes, "\(name).paramBytes")
            try Self.checkBytes(fixed.peakActivationBytes, "\(name).peakActivationBytes")
        }
        var combinations: Double = 1
        for (b, block) in blocks.enumerated() {
            guard !block.variants.isEmpty, block.variants.count <= 255 else {
                throw .invalidSpace("blocks[\(b)].variants: between 1 and 255 variants are required")
            }
            combinations *= Double(block.variants.count)
            for (v, variant) in block.variants.enumerated() {
                let field = "blocks[\(b)].variants[\(v)]"
                try Self.checkLatency(variant.referenceLatencyMs, "\(field).referenceLatencyMs")
                try Self.checkFLOPs(variant.flops, "\(field).flops")
                try Self.checkBytes(variant.paramBytes, "\(field).paramBytes")
                try Self.checkBytes(variant.peakActivationBytes, "\(field).peakActivationBytes")
                try Self.checkBytes(variant.outputBytes, "\(field).outputBytes")
                guard variant.accuracyDrop.isFinite, abs(variant.accuracyDrop) <= Self.maxAccuracyMagnitude else {
                    throw .invalidSpace("\(field).accuracyDrop: must be finite, at most \(Self.maxAccuracyMagnitude) in magnitude")
                }
            }
        }
        // Combinations are named by a mixed-radix code in a UInt64.
        guard combinations < 9.0e18 else { throw .invalidSpace("blocks: more than 9e18 combinations") }
    }
}

extension PlanningSpace {
    static func checkBytes(_ value: Int, _ field: String) throws(PlanningError) {
        guard value >= 0, value <= maxBytes else { throw .invalidSpace("\(field): must be in 0...\(maxBytes) bytes") }
    }

    static func checkLatency(_ value: Double, _ field: String) throws(PlanningError) {
        guard value.isFinite, value >= 0, value <= maxLatencyMs else {
            throw .invalidSpace("\(field): must be in 0...\(maxLatencyMs) ms")
        }
    }

    static func checkFLOPs(_ value: Double, _ field: String) throws(PlanningError) {
        guard value.isFinite, value >= 0, value <= maxFLOPs else { throw .invalidSpace("\(field): must be in 0...\(maxFLOPs)") }
    }
}
