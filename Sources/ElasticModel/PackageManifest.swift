import Learning

/// `manifest.json` of an elastic package: everything a coordinator plans with and a device needs to rebuild the
/// network, plus where it came from. The weights live beside it in `weights.safetensors`, named by `blobs`.
public struct PackageManifest: Codable, Sendable, Equatable {
    public static let formatName = "fleetadapt-elastic-package"
    public static let currentVersion = 1

    public struct Adapter: Codable, Sendable, Equatable {
        public var kind: String
        /// Adapters start at zero, so the package's outputs are those of the distilled network until trained.
        public var zeroInitialised: Bool
        enum CodingKeys: String, CodingKey {
            case kind
            case zeroInitialised = "zero_initialised"
        }
    }

    public struct Reference: Codable, Sendable, Equatable {
        /// Effective throughput of the build machine on this network: full-network FLOPs / full-network latency.
        /// Devices scale reference latencies by `gflops / device gflops` until they have measured their own.
        public var gflops: Double
        public var fullNetworkLatencyMs: Double
        public var latencyRuns: Int
        public var warmupRuns: Int
        public var blasThreads: Int
        enum CodingKeys: String, CodingKey {
            case gflops
            case fullNetworkLatencyMs = "full_network_latency_ms"
            case latencyRuns = "latency_runs"
            case warmupRuns = "warmup_runs"
            case blasThreads = "blas_threads"
        }
    }

    public struct Provenance: Codable, Sendable, Equatable {
        public var dataset: String
        /// The source domain the base model and the distillation saw (clean: no corruption).
        public var sourceDomain: String
        public var corruption: String?
        public var baseModel: String
        public var baseTrainImages: Int?
        public var baseTrainSteps: Int?
        public var cleanTestAccuracy: Double
        public var distillationImages: Int
        public var distillationSteps: Int
        public var distillationBatchSize: Int
        public var distillationLearningRate: Double
        public var distillationLoss: String
        public var seed: UInt64
        enum CodingKeys: String, CodingKey {
            case dataset, corruption, seed
            case sourceDomain = "source_domain"
            case baseModel = "base_model"
            case baseTrainImages = "base_train_images"
            case baseTrainSteps = "base_train_steps"
            case cleanTestAccuracy = "clean_test_accuracy"
            case distillationImages = "distillation_images"
            case distillationSteps = "distillation_steps"
            case distillationBatchSize = "distillation_batch_size"
            case distillationLearningRate = "distillation_learning_rate"
            case distillationLoss = "distillation_loss"
        }
    }

    public struct Blob: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var sizeBytes: Int
        enum CodingKeys: String, CodingKey {
            case path, sha256
            case sizeBytes = "size_bytes"
        }
    }

    public var format: String
    public var formatVersion: Int
    public var name: String
    public var createdAt: String
    public var builder: String
    public var architecture: Architecture
    public var adapter: Adapter
    public var blocks: [PositionSpec]
    public var stem: CostProfile
    public var head: CostProfile
    public var reference: Reference
    public var accuracy: AccuracyEstimate
    public var combinationCount: Int
    public var provenance: Provenance
    public var blobs: [Blob]

    enum CodingKeys: String, CodingKey {
        case format, name, builder, architecture, adapter, blocks, stem, head, reference, accuracy, provenance, blobs
        case formatVersion = "format_version"
        case createdAt = "created_at"
        case combinationCount = "combination_count"
    }

    /// Checks what the network constructor does not: format, counts, profiles and estimator shapes.
    public func validate() throws(PackageError) {
        guard format == Self.formatName else { throw .invalidManifest("format: expected \(Self.formatName)") }
        guard formatVersion == Self.currentVersion else { throw .invalidManifest("format_version: \(formatVersion) is not supported (expected \(Self.currentVersion))") }
        guard (1...128).contains(name.count) else { throw .invalidManifest("name: must be 1–128 characters") }
        guard AdapterKind(rawValue: adapter.kind) != nil else { throw .invalidManifest("adapter.kind: unknown kind \(adapter.kind)") }
        guard !blocks.isEmpty, blocks.count <= 64 else { throw .invalidManifest("blocks: 1...64 positions") }
        var product = 1
        for (p, b) in blocks.enumerated() {
            let (r, overflow) = product.multipliedReportingOverflow(by: b.variants.count)
            guard !overflow else { throw .invalidManifest("blocks: too many combinations") }
            product = r
            for (v, variant) in b.variants.enumerated() {
                guard let profile = variant.profile else { throw .invalidManifest("blocks[\(p)].variants[\(v)].profile: missing") }
                try check(profile, "blocks[\(p)].variants[\(v)].profile")
            }
        }
        guard combinationCount == product else { throw .invalidManifest("combination_count: \(combinationCount) but the blocks give \(product)") }
        try check(stem, "stem")
        try check(head, "head")
        guard reference.gflops.isFinite, reference.gflops > 0 else { throw .invalidManifest("reference.gflops: must be positive") }
        for (name, table) in [("drops", accuracy.drops), ("fitted", accuracy.fitted)] {
            guard table.count == blocks.count, zip(table, blocks).allSatisfy({ $0.count == $1.variants.count }),
                  table.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
                throw .invalidManifest("accuracy.\(name): one finite drop per variant of every block")
            }
        }
        guard accuracy.baseAccuracy.isFinite else { throw .invalidManifest("accuracy.base_accuracy: must be finite") }
    }

    private func check(_ c: CostProfile, _ field: String) throws(PackageError) {
        guard c.flops.isFinite, c.flops >= 0, c.latencyMs.isFinite, c.latencyMs >= 0, c.paramBytes >= 0, c.peakActivationBytes >= 0,
              c.outputBytes >= 0 else {
            throw .invalidManifest("\(field): costs must be finite and not negative")
        }
    }
}
