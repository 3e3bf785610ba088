import Learning

/// `manifest.json` of an elastic package: everything a coordinator plans with and a device needs to rebuild the
/// network, plus where it came from. The weights live beside it in `weights.safetensors`, named by `blobs`.
public struct PackageManifest: Codable, Sendable, Equatable {
    public static let formatName = "fleetadapt-elastic-package"
    /// 2: the archive carries `manifest.sha256`, the manifest's digest (format 1 had none).
    public static let currentVersion = 2

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
    /// How an image becomes the network's input (imported networks; the built-in families have none and take the
    /// engine's default). The network itself takes the engine's normalised RGB (or gray) tensor, (pixel / 255 − 0.2860)
    /// / 0.3530: the record's `mean`/`std` and a BGR order are applied inside the graph's first node, so every
    /// consumer feeds it alike; `resize` and `crop` are what the builder applied to its images.
    public var preprocessing: InputPreprocessing?
    /// One name per class, in logit order, when the builder knew them.
    public var classNames: [String]?
    /// What `accuracy` and `provenance.clean_test_accuracy` measure: `accuracy` against labels (the default), or
    /// `teacher-agreement`, top-1 agreement with the imported network on unlabeled images.
    public var accuracyMetric: String?

    enum CodingKeys: String, CodingKey {
        case format, name, builder, architecture, adapter, blocks, stem, head, reference, accuracy, provenance, blobs, preprocessing
        case formatVersion = "format_version"
        case createdAt = "created_at"
        case combinationCount = "combination_count"
        case classNames = "class_names"
        case accuracyMetric = "accuracy_metric"
    }

    /// The manifest's preprocessing record, in the JSON form of ImageIO's `Preprocessing` (what the agent applies):
    /// resize (`shorter_side`, or `width` and `height`), centre crop, channel order, scale to [0, 1], mean and std.
    public struct InputPreprocessing: Codable, Sendable, Hashable {
        public struct Resize: Codable, Sendable, Hashable {
            public var shorterSide: Int?, width: Int?, height: Int?
            public init(shorterSide: Int?, width: Int?, height: Int?) { self.shorterSide = shorterSide; self.width = width; self.height = height }
            enum CodingKeys: String, CodingKey {
                case width, height
                case shorterSide = "shorter_side"
            }
        }
        public struct Crop: Codable, Sendable, Hashable {
            public var width: Int, height: Int
            public init(width: Int, height: Int) { self.width = width; self.height = height }
        }
        public var resize: Resize?
        public var interpolation: String
        public var crop: Crop?
        /// rgb, bgr or gray.
        public var channels: String
        public var scaleToUnit: Bool
        public var mean: [Float]
        public var std: [Float]

        public init(resize: Resize?, crop: Crop?, channels: String, mean: [Float], std: [Float]) {
            self.resize = resize
            interpolation = "bilinear"
            self.crop = crop
            self.channels = channels
            scaleToUnit = true
            self.mean = mean
            self.std = std
        }

        enum CodingKeys: String, CodingKey {
            case resize, interpolation, crop, channels, mean, std
            case scaleToUnit = "scale_to_unit"
        }

        /// Refuses a record the consumers could not apply to give the network's `inputShape` (C, H, W): unknown
        /// names, sizes outside 1…4096 (zero included), a crop larger than the resized image, a resize or crop of
        /// another size than the input, or means and stds that are not one finite number (std positive) per channel.
        func validate(inputShape: [Int]) throws(PackageError) {
            func bad(_ f: String, _ why: String) -> PackageError { .invalidManifest(field: "preprocessing.\(f)", message: why) }
            let count = inputShape[0]
            guard ["rgb", "bgr", "gray"].contains(channels) else { throw bad("channels", "rgb, bgr or gray") }
            guard (channels == "gray" ? 1 : 3) == count else { throw bad("channels", "\(channels) does not give the network's \(count) channels") }
            guard interpolation == "bilinear" else { throw bad("interpolation", "bilinear") }
            guard scaleToUnit else { throw bad("scale_to_unit", "must be true (mean and std apply to pixels / 255)") }
            for (field, side) in [("resize.shorter_side", resize?.shorterSide), ("resize.width", resize?.width), ("resize.height", resize?.height),
                                  ("crop.width", crop?.width), ("crop.height", crop?.height)] {
                if let side, !(1...4096).contains(side) { throw bad(field, "must be between 1 and 4096, got \(side)") }
            }
            if let r = resize, !((r.shorterSide != nil && r.width == nil && r.height == nil) || (r.shorterSide == nil && r.width != nil && r.height != nil)) {
                throw bad("resize", "shorter_side, or width and height")
            }
            guard mean.count == count, mean.allSatisfy({ $0.isFinite && abs($0) <= 1e6 }) else { throw bad("mean", "\(count) finite numbers") }
            guard std.count == count, std.allSatisfy({ $0.isFinite && $0 > 1e-12 && $0 <= 1e6 }) else { throw bad("std", "\(count) positive numbers") }
            // The image after resize: known exactly for width × height, at least shorter_side on both sides otherwise.
            let (h, w) = (inputShape[1], inputShape[2])
            let resizedW = resize.map { $0.width ?? $0.shorterSide! } ?? w, resizedH = resize.map { $0.height ?? $0.shorterSide! } ?? h
            if let c = crop {
                if c.width > resizedW { throw bad("crop.width", "\(c.width) is wider than the resized image (\(resizedW))") }
                if c.height > resizedH { throw bad("crop.height", "\(c.height) is taller than the resized image (\(resizedH))") }
                guard c.width == w, c.height == h else { throw bad("crop", "\(c.width)x\(c.height) is not the network's input \(w)x\(h)") }
            } else if let r = resize {
                if r.shorterSide != nil {
                    guard resizedW == min(w, h) else {
                        throw bad("resize.shorter_side", "\(resizedW) without a crop must be the input's shorter side (\(min(w, h)))")
                    }
                } else if resizedW != w || resizedH != h {
                    throw bad("resize", "\(resizedW)x\(resizedH) without a crop must be the network's input \(w)x\(h)")
                }
            }
        }
    }

    /// Checks every number and string of the manifest against `PackageLimits` before anything is sized by it or
    /// enters arithmetic, naming the field (its JSON path) at fault. The network's shapes are checked against the
    /// architecture by `DeclaredNetwork`.
    public func validate() throws(PackageError) {
        typealias L = PackageLimits
        func bad(_ field: String, _ why: String) -> PackageError { .invalidManifest(field: field, message: why) }
        guard format == Self.formatName else { throw bad("format", "expected \(Self.formatName)") }
        guard formatVersion == Self.currentVersion else {
            throw bad("format_version", "\(formatVersion) is not supported (expected \(Self.currentVersion)); rebuild the package with `fleetadapt model build`")
        }
        guard (1...128).contains(name.count) else { throw bad("name", "must be 1–128 characters") }
        try L.text(createdAt, "created_at", max: 64)
        try L.text(builder, "builder", max: 256)
        try architecture.validate()
        guard AdapterKind(rawValue: adapter.kind) != nil else { throw bad("adapter.kind", "unknown kind \(adapter.kind)") }
        guard !blocks.isEmpty, blocks.count <= L.maxBlocks else { throw bad("blocks", "1...\(L.maxBlocks) positions") }
        var product = 1
        for (p, b) in blocks.enumerated() {
            let field = "blocks[\(p)]"
            try L.text(b.name, "\(field).name", max: 64)
            try L.text(b.kind, "\(field).kind", max: 64)
            try L.text(b.residual, "\(field).residual", max: 64)
            guard !b.variants.isEmpty, b.variants.count <= L.maxVariants else { throw bad("\(field).variants", "1...\(L.maxVariants) variants") }
            let (r, overflow) = product.multipliedReportingOverflow(by: b.variants.count)
            guard !overflow, r <= L.maxCombinations else { throw bad("blocks", "more than \(L.maxCombinations) combinations") }
            product = r
            for (v, variant) in b.variants.enumerated() {
                let vfield = "\(field).variants[\(v)]"
                try L.text(variant.id, "\(vfield).id", max: 16)
                try L.number(variant.sparsity, "\(vfield).sparsity", 0...1)
                guard let profile = variant.profile else { throw bad("\(vfield).profile", "missing") }
                try L.check(profile, "\(vfield).profile")
                if let d = variant.distillation {
                    try L.number(d.mseBefore, "\(vfield).distillation.mse_before", 0...L.maxMSE)
                    try L.number(d.mseAfter, "\(vfield).distillation.mse_after", 0...L.maxMSE)
                    try L.count(d.steps, "\(vfield).distillation.steps")
                }
            }
        }
        guard combinationCount == product else { throw bad("combination_count", "\(combinationCount) but the blocks give \(product)") }
        try L.check(stem, "stem")
        try L.check(head, "head")
        guard reference.gflops.isFinite, reference.gflops > 0, reference.gflops <= L.maxGFLOPS else {
            throw bad("reference.gflops", "must be positive and at most \(L.maxGFLOPS)")
        }
        try L.number(reference.fullNetworkLatencyMs, "reference.full_network_latency_ms", 0...L.maxLatencyMs)
        try L.count(reference.latencyRuns, "reference.latency_runs")
        try L.count(reference.warmupRuns, "reference.warmup_runs")
        try L.integer(reference.blasThreads, "reference.blas_threads", 1...1024)
        try L.number(accuracy.baseAccuracy, "accuracy.base_accuracy", 0...1)
        for (name, table) in [("drops", accuracy.drops), ("fitted", accuracy.fitted)] {
            guard table.count == blocks.count, zip(table, blocks).allSatisfy({ $0.count == $1.variants.count }) else {
                throw bad("accuracy.\(name)", "one drop per variant of every block")
            }
            for (p, row) in table.enumerated() {
                for (v, x) in row.enumerated() { try L.number(x, "accuracy.\(name)[\(p)][\(v)]", -1...1) }
            }
        }
        for (name, points) in [("calibration", accuracy.calibration), ("validation", accuracy.validation)] {
            guard points.count <= L.maxAccuracyPoints else { throw bad("accuracy.\(name)", "at most \(L.maxAccuracyPoints) points") }
            for (i, point) in points.enumerated() {
                let field = "accuracy.\(name)[\(i)]"
                guard point.variants.count == blocks.count else { throw bad("\(field).variants", "one variant id per block") }
                for (p, id) in point.variants.enumerated() { try L.text(id, "\(field).variants[\(p)]", max: 16) }
                try L.number(point.measured, "\(field).measured", 0...1)
                try L.number(point.estimated, "\(field).estimated", -L.maxAccuracyMagnitude...L.maxAccuracyMagnitude)
            }
        }
        try L.number(accuracy.meanAbsError, "accuracy.mean_abs_error", 0...L.maxAccuracyMagnitude)
        try L.number(accuracy.maxAbsError, "accuracy.max_abs_error", 0...L.maxAccuracyMagnitude)
        try L.count(accuracy.validationImages, "accuracy.validation_images")
        try accuracy.validateModel(variantCounts: blocks.map(\.variants.count))
        let pv = provenance
        try L.text(pv.dataset, "provenance.dataset", max: 1024)
        try L.text(pv.sourceDomain, "provenance.source_domain", max: 1024)
        if let c = pv.corruption { try L.text(c, "provenance.corruption", max: 1024) }
        try L.text(pv.baseModel, "provenance.base_model", max: 1024)
        if let n = pv.baseTrainImages { try L.count(n, "provenance.base_train_images") }
        if let n = pv.baseTrainSteps { try L.count(n, "provenance.base_train_steps") }
        try L.number(pv.cleanTestAccuracy, "provenance.clean_test_accuracy", 0...1)
        try L.count(pv.distillationImages, "provenance.distillation_images")
        try L.count(pv.distillationSteps, "provenance.distillation_steps")
        try L.count(pv.distillationBatchSize, "provenance.distillation_batch_size")
        try L.number(pv.distillationLearningRate, "provenance.distillation_learning_rate", 0...1000)
        try L.text(pv.distillationLoss, "provenance.distillation_loss", max: 64)
        if let p = preprocessing { try p.validate(inputShape: architecture.inputShape) }
        if let names = classNames {
            guard names.count == architecture.classes else { throw bad("class_names", "one name per class (\(architecture.classes))") }
            for (i, n) in names.enumerated() { try L.text(n, "class_names[\(i)]", max: 256) }
        }
        if let m = accuracyMetric, !["accuracy", "teacher-agreement"].contains(m) { throw bad("accuracy_metric", "accuracy or teacher-agreement") }
        guard blobs.count <= 1 else { throw bad("blobs", "must list \(ElasticPackage.weightsName) alone") }
        for (i, blob) in blobs.enumerated() {
            try L.text(blob.path, "blobs[\(i)].path", max: 256)
            try L.text(blob.sha256, "blobs[\(i)].sha256", max: 64)
            try L.integer(blob.sizeBytes, "blobs[\(i)].size_bytes", 0...L.maxBytes)
        }
    }
}

/// The stated bounds of every number a package may carry. Wide enough for any real network built here, narrow
/// enough that nothing sized or summed from them can overflow or allocate without bound (see `PlanningSpace`).
public enum PackageLimits {
    /// `manifest.json` is read whole into a JSON tree, so it is bounded apart from the package (real ones are ~30 KB).
    public static let maxManifestBytes = 1 << 20
    public static let maxBlocks = 64
    public static let maxVariants = 16
    public static let maxCombinations = 1 << 62
    /// Per part: parameter, activation and tensor bytes (1 TiB).
    public static let maxBytes = 1 << 40
    /// Per part: FLOPs.
    public static let maxFLOPs = 1e18
    /// Per part: latency on the build machine (10⁶ ms).
    public static let maxLatencyMs = 1e6
    public static let maxGFLOPS = 1e9
    /// Runs, steps, images, batch sizes.
    public static let maxCount = 1_000_000_000
    public static let maxAccuracyPoints = 10_000
    public static let maxAccuracyMagnitude = 1e3
    public static let maxMSE = 1e30

    static func number(_ x: Double, _ field: String, _ range: ClosedRange<Double>) throws(PackageError) {
        guard x.isFinite, range.contains(x) else {
            throw .invalidManifest(field: field, message: "must be a finite number in \(range.lowerBound)...\(range.upperBound)")
        }
    }

    static func integer(_ x: Int, _ field: String, _ range: ClosedRange<Int>) throws(PackageError) {
        guard range.contains(x) else { throw .invalidManifest(field: field, message: "must be in \(range.lowerBound)...\(range.upperBound)") }
    }

    static func count(_ x: Int, _ field: String) throws(PackageError) { try integer(x, field, 0...maxCount) }

    static func text(_ s: String, _ field: String, max: Int) throws(PackageError) {
        guard s.utf8.count <= max else { throw .invalidManifest(field: field, message: "at most \(max) bytes") }
    }

    static func check(_ c: CostProfile, _ field: String) throws(PackageError) {
        try number(c.flops, field + ".flops", 0...maxFLOPs)
        try number(c.latencyMs, field + ".latency_ms", 0...maxLatencyMs)
        try integer(c.paramBytes, field + ".param_bytes", 0...maxBytes)
        try integer(c.peakActivationBytes, field + ".peak_activation_bytes", 0...maxBytes)
        try integer(c.outputBytes, field + ".output_bytes", 0...maxBytes)
    }
}
