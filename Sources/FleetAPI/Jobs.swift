import Foundation

/// The states of a job; see migrations/0003 for the transitions the database allows.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, leased, running, succeeded, failed
    case timedOut = "timed_out"
    case canceled
    /// An `adapt` job whose result failed its campaign's quality gate: its adapters are neither aggregated nor run.
    case rejected

    public var isTerminal: Bool { [.succeeded, .failed, .timedOut, .canceled, .rejected].contains(self) }
}

public enum JobKind: String, Codable, Sendable, CaseIterable {
    /// Train the block adapters on the device's local unlabeled data.
    case adapt
    /// Switch to the current config, installing the domain's aggregated adapters.
    case apply
    /// Measure every variant's latency on the device.
    case profile
    /// Put back what the device ran before a campaign or release that was rolled back: the restored config's model
    /// and combination with the adapters it ran then (`JobDocument.restore`), or none.
    case restore
}

/// The unsupervised loss an `adapt` job trains with (the wire names of `Learning.AdaptationLoss`), or `none` for
/// jobs that train nothing (`profile`, `apply`). A name outside these is a decoding error that names the field
/// (`job.loss` in a domain request: 422), never a string carried along.
public enum JobLoss: String, Codable, Sendable, CaseIterable {
    /// TENT: minimise prediction entropy.
    case tent
    /// SHOT-IM: entropy minus the entropy of the mean prediction.
    case shotIM = "shot-im"
    /// EATA: entropy over reliable samples only.
    case eata
    /// Re-estimate batch-norm statistics; no gradients.
    case bnStats = "bn-stats"
    /// No training (measuring and applying jobs).
    case noTraining = "none"

    /// The losses an `adapt` job may name.
    public static let trainable: [JobLoss] = [.tent, .shotIM, .eata, .bnStats]

    /// The loss named `text`, or a `ValidationIssue` on `field` listing the trainable ones.
    public init(named text: String, field: String = "loss") throws {
        guard let loss = JobLoss(rawValue: text) else {
            throw ValidationIssue(field: field, message: Self.expectation)
        }
        self = loss
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let loss = JobLoss(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: Self.expectation)
        }
        self = loss
    }

    static var expectation: String { "must be one of: \(trainable.map(\.rawValue).joined(separator: ", "))" }
}

/// What the agent needs to run one job; written per device when the campaign is created.
public struct JobDocument: Codable, Sendable, Hashable {
    public var kind: JobKind
    public var modelID: UUID
    public var domainID: UUID
    public var domainName: String
    /// Variant id per block position: the device's planned combination.
    public var variants: [String]
    public var loss: JobLoss
    public var steps: Int
    public var learningRate: Double
    public var batchSize: Int
    /// Why `steps` differs from the requested steps (energy budget, battery), for the operator.
    public var budgetNote: String?
    /// For `apply`: the aggregated domain adapter to install.
    public var adapterVersion: Int?
    /// For `restore`: the config version it puts back and the adapters that config runs.
    public var restore: RestoreTarget?

    public init(kind: JobKind, modelID: UUID, domainID: UUID, domainName: String, variants: [String], loss: JobLoss,
                steps: Int, learningRate: Double, batchSize: Int, budgetNote: String? = nil, adapterVersion: Int? = nil,
                restore: RestoreTarget? = nil) {
        self.kind = kind
        self.modelID = modelID
        self.domainID = domainID
        self.domainName = domainName
        self.variants = variants
        self.loss = loss
        self.steps = steps
        self.learningRate = learningRate
        self.batchSize = batchSize
        self.budgetNote = budgetNote
        self.adapterVersion = adapterVersion
        self.restore = restore
    }

    enum CodingKeys: String, CodingKey {
        case kind, variants, loss, steps, restore
        case modelID = "model_id"
        case domainID = "domain_id"
        case domainName = "domain_name"
        case learningRate = "learning_rate"
        case batchSize = "batch_size"
        case budgetNote = "budget_note"
        case adapterVersion = "adapter_version"
    }
}

/// What a `restore` job puts back: the config version a rollback restored and the adapters that config runs. The
/// agent downloads those adapters from `GET /v1/agent/jobs/{id}/adapters` (only while it holds the job; the
/// coordinator serves exactly the file named here, the device's own earlier artifact or its domain's aggregate) and
/// checks the download against `sha256`; with no adapters it drops the ones it holds and runs the plain package.
public struct RestoreTarget: Codable, Sendable, Hashable {
    /// The device's config version the rollback wrote (or found already current).
    public var configVersion: Int
    /// The adapters the restored config runs; nil: none.
    public var adapters: AdapterChoice?
    /// For `local` adapters: the device's own earlier `adapt` job whose artifact they are.
    public var artifactJobID: UUID?
    /// SHA-256 (lower-case hex) of the adapter file to install; nil when there are no adapters.
    public var sha256: String?

    public init(configVersion: Int, adapters: AdapterChoice?, artifactJobID: UUID? = nil, sha256: String? = nil) {
        self.configVersion = configVersion
        self.adapters = adapters
        self.artifactJobID = artifactJobID
        self.sha256 = sha256
    }

    enum CodingKeys: String, CodingKey {
        case adapters, sha256
        case configVersion = "config_version"
        case artifactJobID = "artifact_job_id"
    }
}

/// A leased job as the agent receives it.
public struct LeasedJob: Codable, Sendable, Equatable {
    public var id: UUID
    public var campaignID: UUID
    public var attempt: Int
    public var leaseExpiresAt: Date
    public var document: JobDocument

    public init(id: UUID, campaignID: UUID, attempt: Int, leaseExpiresAt: Date, document: JobDocument) {
        self.id = id
        self.campaignID = campaignID
        self.attempt = attempt
        self.leaseExpiresAt = leaseExpiresAt
        self.document = document
    }

    enum CodingKeys: String, CodingKey {
        case id, attempt, document
        case campaignID = "campaign_id"
        case leaseExpiresAt = "lease_expires_at"
    }
}

/// `POST /v1/agent/jobs/{id}/heartbeat`: the attempt the agent holds, and free-form numeric progress.
public struct Heartbeat: Codable, Sendable, Equatable {
    public var attempt: Int
    public var progress: [String: Double]?

    public init(attempt: Int, progress: [String: Double]? = nil) {
        self.attempt = attempt
        self.progress = progress
    }

    public func validate() -> [ValidationIssue] {
        var v = Validator()
        v.number(Double(attempt), "attempt", min: 1, max: 25)
        for (k, value) in progress ?? [:] where !value.isFinite { v.fail("progress.\(k)", "must be a finite number") }
        if (progress?.count ?? 0) > 32 { v.fail("progress", "must have at most 32 entries") }
        return v.issues
    }
}

/// What a finished attempt measured.
public struct JobMetrics: Codable, Sendable, Equatable {
    public var entropyBefore: Double?
    public var entropyAfter: Double?
    public var accuracyBefore: Double?
    public var accuracyAfter: Double?
    public var trainSeconds: Double?
    public var energyMJ: Double?
    public var samples: Int?
    public var steps: Int?
    public var latencyMs: Double?
    /// Set when `latency_ms` was measured split: the device ran blocks up to this one, an edge server the rest.
    public var splitAfterBlock: Int?
    /// Prediction diversity: the entropy of the batch-mean prediction over the device's data, before and after.
    /// It falls towards 0 when adaptation collapses onto one class (TENT's failure mode) while per-sample
    /// entropy keeps falling.
    public var diversityBefore: Double?
    public var diversityAfter: Double?
    /// Accuracy on the labelled part of the device's data the adaptation did not train on (`heldout_samples`
    /// images), before and after: what the quality gate judges when the device has labels.
    public var heldoutAccuracyBefore: Double?
    public var heldoutAccuracyAfter: Double?
    public var heldoutSamples: Int?

    public init(entropyBefore: Double? = nil, entropyAfter: Double? = nil, accuracyBefore: Double? = nil,
                accuracyAfter: Double? = nil, trainSeconds: Double? = nil, energyMJ: Double? = nil, samples: Int? = nil,
                steps: Int? = nil, latencyMs: Double? = nil, splitAfterBlock: Int? = nil, diversityBefore: Double? = nil,
                diversityAfter: Double? = nil, heldoutAccuracyBefore: Double? = nil, heldoutAccuracyAfter: Double? = nil,
                heldoutSamples: Int? = nil) {
        self.heldoutAccuracyBefore = heldoutAccuracyBefore
        self.heldoutAccuracyAfter = heldoutAccuracyAfter
        self.heldoutSamples = heldoutSamples
        self.diversityBefore = diversityBefore
        self.diversityAfter = diversityAfter
        self.entropyBefore = entropyBefore
        self.entropyAfter = entropyAfter
        self.accuracyBefore = accuracyBefore
        self.accuracyAfter = accuracyAfter
        self.trainSeconds = trainSeconds
        self.energyMJ = energyMJ
        self.samples = samples
        self.steps = steps
        self.latencyMs = latencyMs
        self.splitAfterBlock = splitAfterBlock
    }

    enum CodingKeys: String, CodingKey {
        case samples, steps
        case entropyBefore = "entropy_before"
        case entropyAfter = "entropy_after"
        case accuracyBefore = "accuracy_before"
        case accuracyAfter = "accuracy_after"
        case trainSeconds = "train_seconds"
        case energyMJ = "energy_mj"
        case latencyMs = "latency_ms"
        case splitAfterBlock = "split_after_block"
        case diversityBefore = "diversity_before"
        case diversityAfter = "diversity_after"
        case heldoutAccuracyBefore = "heldout_accuracy_before"
        case heldoutAccuracyAfter = "heldout_accuracy_after"
        case heldoutSamples = "heldout_samples"
    }

    func validate(into v: inout Validator) {
        v.number(heldoutAccuracyBefore, "metrics.heldout_accuracy_before", min: 0, max: 1, required: false)
        v.number(heldoutAccuracyAfter, "metrics.heldout_accuracy_after", min: 0, max: 1, required: false)
        if let heldoutSamples {
            v.number(Double(heldoutSamples), "metrics.heldout_samples", min: 1, max: Double(samples ?? 1_000_000_000))
        }
        if (heldoutAccuracyBefore == nil) != (heldoutAccuracyAfter == nil) || (heldoutAccuracyBefore == nil) != (heldoutSamples == nil) {
            v.fail("metrics.heldout_samples", "heldout_accuracy_before, heldout_accuracy_after and heldout_samples come together")
        }
        v.number(diversityBefore, "metrics.diversity_before", min: 0, max: 1e6, required: false)
        v.number(diversityAfter, "metrics.diversity_after", min: 0, max: 1e6, required: false)
        v.number(entropyBefore, "metrics.entropy_before", min: 0, max: 1e6, required: false)
        v.number(entropyAfter, "metrics.entropy_after", min: 0, max: 1e6, required: false)
        v.number(accuracyBefore, "metrics.accuracy_before", min: 0, max: 1, required: false)
        v.number(accuracyAfter, "metrics.accuracy_after", min: 0, max: 1, required: false)
        v.number(trainSeconds, "metrics.train_seconds", min: 0, max: 1e7, required: false)
        v.number(energyMJ, "metrics.energy_mj", min: 0, max: 1e12, required: false)
        v.number(latencyMs, "metrics.latency_ms", min: 0, max: 1e7, required: false)
        if let samples { v.number(Double(samples), "metrics.samples", min: 0, max: 1e9) }
        if let steps { v.number(Double(steps), "metrics.steps", min: 0, max: 1e7) }
        if let splitAfterBlock { v.number(Double(splitAfterBlock), "metrics.split_after_block", min: -1, max: 1024) }
    }
}

/// `POST /v1/agent/jobs/{id}/result`.
public struct JobResult: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable { case succeeded, failed }

    public var attempt: Int
    public var outcome: Outcome
    public var error: String?
    public var metrics: JobMetrics?
    /// For `profile`: measured latency in ms per block position and variant (same order as the package).
    public var variantLatenciesMs: [[Double]]?

    public init(attempt: Int, outcome: Outcome, error: String? = nil, metrics: JobMetrics? = nil,
                variantLatenciesMs: [[Double]]? = nil) {
        self.attempt = attempt
        self.outcome = outcome
        self.error = error
        self.metrics = metrics
        self.variantLatenciesMs = variantLatenciesMs
    }

    enum CodingKeys: String, CodingKey {
        case attempt, outcome, error, metrics
        case variantLatenciesMs = "variant_latencies_ms"
    }

    public func validate() -> [ValidationIssue] {
        var v = Validator()
        v.number(Double(attempt), "attempt", min: 1, max: 25)
        if outcome == .failed { v.text(error, "error", maxLength: 4096) } else { v.text(error, "error", minLength: 0, maxLength: 4096, required: false) }
        metrics?.validate(into: &v)
        if let lat = variantLatenciesMs { Self.validate(variantLatenciesMs: lat, into: &v) }
        return v.issues
    }

    /// At most 256 block positions of 1–64 variants, each latency in (0, 10⁷] ms.
    static func validate(variantLatenciesMs lat: [[Double]], into v: inout Validator) {
        if lat.count > 256 { v.fail("variant_latencies_ms", "must have at most 256 block positions") }
        for (i, row) in lat.enumerated() {
            if row.isEmpty || row.count > 64 { v.fail("variant_latencies_ms.\(i)", "must list 1–64 variants") }
            for (j, x) in row.enumerated() { v.number(x, "variant_latencies_ms.\(i).\(j)", min: 0, max: 1e7, minExclusive: true) }
        }
    }
}
