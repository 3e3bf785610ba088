import Foundation

/// A published elastic model as the API shows it: the manifest's summary (blocks, variants, profiles,
/// accuracy estimator), not its weights.
public struct ModelView: Codable, Sendable, Equatable {
    public struct Variant: Codable, Sendable, Equatable {
        public var id: String
        public var sparsity: Double
        public var hiddenChannels: Int?
        public var skip: String?
        public var flops: Double
        public var paramBytes: Int
        public var peakActivationBytes: Int
        public var outputBytes: Int
        public var latencyMs: Double
        /// The estimator's accuracy drop of this variant (base − Σ drops estimates a combination).
        public var accuracyDrop: Double

        public init(id: String, sparsity: Double, hiddenChannels: Int?, skip: String?, flops: Double, paramBytes: Int,
                    peakActivationBytes: Int, outputBytes: Int, latencyMs: Double, accuracyDrop: Double) {
            self.id = id
            self.sparsity = sparsity
            self.hiddenChannels = hiddenChannels
            self.skip = skip
            self.flops = flops
            self.paramBytes = paramBytes
            self.peakActivationBytes = peakActivationBytes
            self.outputBytes = outputBytes
            self.latencyMs = latencyMs
            self.accuracyDrop = accuracyDrop
        }

        enum CodingKeys: String, CodingKey {
            case id, sparsity, skip, flops
            case hiddenChannels = "hidden_channels"
            case paramBytes = "param_bytes"
            case peakActivationBytes = "peak_activation_bytes"
            case outputBytes = "output_bytes"
            case latencyMs = "latency_ms"
            case accuracyDrop = "accuracy_drop"
        }
    }

    public struct Block: Codable, Sendable, Equatable {
        public var name: String
        public var kind: String
        public var variants: [Variant]
        public init(name: String, kind: String, variants: [Variant]) { self.name = name; self.kind = kind; self.variants = variants }
    }

    public struct Accuracy: Codable, Sendable, Equatable {
        public var baseAccuracy: Double
        public var meanAbsError: Double
        public var maxAbsError: Double
        public init(baseAccuracy: Double, meanAbsError: Double, maxAbsError: Double) {
            self.baseAccuracy = baseAccuracy
            self.meanAbsError = meanAbsError
            self.maxAbsError = maxAbsError
        }
        enum CodingKeys: String, CodingKey {
            case baseAccuracy = "base_accuracy"
            case meanAbsError = "mean_abs_error"
            case maxAbsError = "max_abs_error"
        }
    }

    public var id: UUID
    public var name: String
    public var sha256: String
    public var sizeBytes: Int
    public var combinationCount: Int
    public var family: String
    public var adapterKind: String
    public var referenceGFLOPS: Double
    public var blocks: [Block]
    public var accuracy: Accuracy
    public var createdAt: Date
    /// Set once the model is deprecated: the planner never chooses it again.
    public var deprecatedAt: Date?
    /// Rises by one with each publish of `name` (assigned by the coordinator).
    public var version: Int
    /// Operator labels given at publish (`?tags=stable,cameras`).
    public var tags: [String]

    public init(id: UUID, name: String, sha256: String, sizeBytes: Int, combinationCount: Int, family: String, adapterKind: String,
                referenceGFLOPS: Double, blocks: [Block], accuracy: Accuracy, createdAt: Date, deprecatedAt: Date? = nil,
                version: Int = 1, tags: [String] = []) {
        self.version = version
        self.tags = tags
        self.id = id
        self.name = name
        self.sha256 = sha256
        self.sizeBytes = sizeBytes
        self.combinationCount = combinationCount
        self.family = family
        self.adapterKind = adapterKind
        self.referenceGFLOPS = referenceGFLOPS
        self.blocks = blocks
        self.accuracy = accuracy
        self.createdAt = createdAt
        self.deprecatedAt = deprecatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, sha256, family, blocks, accuracy, version, tags
        case sizeBytes = "size_bytes"
        case combinationCount = "combination_count"
        case adapterKind = "adapter_kind"
        case referenceGFLOPS = "reference_gflops"
        case createdAt = "created_at"
        case deprecatedAt = "deprecated_at"
    }
}
