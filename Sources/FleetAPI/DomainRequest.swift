import Foundation

/// Body of `POST /v1/domains`: a new target domain and how to roll its adaptation out over the fleet.
public struct DomainRequest: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var modelID: UUID
    public var selector: Selector
    public var rollout: Rollout?
    public var abort: Abort?
    public var job: JobSpec
    /// The quality gate of the campaign's `adapt` results (default `QualityGate()`).
    public var gate: QualityGate?
    /// No wave is released before this time (the campaign waits, paused by its schedule).
    public var startAt: Date?
    /// Waves are released only inside this daily UTC window; outside it the campaign waits, paused by its schedule.
    public var window: MaintenanceWindow?
    /// Devices that match the label selector later (registered or relabelled while the campaign runs) get their job.
    public var continuous: Bool?

    public init(name: String, description: String? = nil, modelID: UUID, selector: Selector, rollout: Rollout? = nil,
                abort: Abort? = nil, job: JobSpec, gate: QualityGate? = nil, startAt: Date? = nil, window: MaintenanceWindow? = nil,
                continuous: Bool? = nil) {
        self.gate = gate
        self.startAt = startAt
        self.window = window
        self.continuous = continuous
        self.name = name
        self.description = description
        self.modelID = modelID
        self.selector = selector
        self.rollout = rollout
        self.abort = abort
        self.job = job
    }

    enum CodingKeys: String, CodingKey {
        case name, description, selector, rollout, abort, job, gate, window, continuous
        case modelID = "model_id"
        case startAt = "start_at"
    }

    /// Which devices take part: all active devices with these labels, or exactly these ids (one of the two).
    public struct Selector: Codable, Sendable, Equatable {
        public var labels: [String: String]?
        public var deviceIDs: [UUID]?

        public init(labels: [String: String]? = nil, deviceIDs: [UUID]? = nil) {
            self.labels = labels
            self.deviceIDs = deviceIDs
        }

        enum CodingKeys: String, CodingKey {
            case labels
            case deviceIDs = "device_ids"
        }
    }

    /// Waves: a canary share first, then waves of `wave_size_pct`, each released only when the
    /// released waves succeeded at `success_threshold_pct`.
    public struct Rollout: Codable, Sendable, Equatable {
        public var canaryPct: Double
        public var waveSizePct: Double
        public var successThresholdPct: Double
        public var maxPerMinute: Int?

        public init(canaryPct: Double = 10, waveSizePct: Double = 30, successThresholdPct: Double = 80, maxPerMinute: Int? = nil) {
            self.canaryPct = canaryPct
            self.waveSizePct = waveSizePct
            self.successThresholdPct = successThresholdPct
            self.maxPerMinute = maxPerMinute
        }

        /// Absent fields take their defaults, so `{"canary_pct": 5}` is a whole rollout.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Rollout()
            canaryPct = try c.decodeIfPresent(Double.self, forKey: .canaryPct) ?? d.canaryPct
            waveSizePct = try c.decodeIfPresent(Double.self, forKey: .waveSizePct) ?? d.waveSizePct
            successThresholdPct = try c.decodeIfPresent(Double.self, forKey: .successThresholdPct) ?? d.successThresholdPct
            maxPerMinute = try c.decodeIfPresent(Int.self, forKey: .maxPerMinute)
        }

        enum CodingKeys: String, CodingKey {
            case canaryPct = "canary_pct"
            case waveSizePct = "wave_size_pct"
            case successThresholdPct = "success_threshold_pct"
            case maxPerMinute = "max_per_minute"
        }
    }

    /// Stop the rollout when more than `failure_threshold_pct` of executed jobs failed, once `min_executed` ran.
    public struct Abort: Codable, Sendable, Equatable {
        /// `rollback`: the campaign rolls back every device it changed (`POST /v1/campaigns/{id}/rollback`).
        public enum Action: String, Codable, Sendable { case pause, abort, rollback }
        public var failureThresholdPct: Double
        public var minExecuted: Int
        public var action: Action?

        public init(failureThresholdPct: Double = 20, minExecuted: Int = 5, action: Action? = nil) {
            self.failureThresholdPct = failureThresholdPct
            self.minExecuted = minExecuted
            self.action = action
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Abort()
            failureThresholdPct = try c.decodeIfPresent(Double.self, forKey: .failureThresholdPct) ?? d.failureThresholdPct
            minExecuted = try c.decodeIfPresent(Int.self, forKey: .minExecuted) ?? d.minExecuted
            action = try c.decodeIfPresent(Action.self, forKey: .action)
        }

        enum CodingKeys: String, CodingKey {
            case failureThresholdPct = "failure_threshold_pct"
            case minExecuted = "min_executed"
            case action
        }
    }

    public struct JobSpec: Codable, Sendable, Equatable {
        /// `adapt` (default): train adapters on the target domain. `profile`: measure every variant's latency on each
        /// device (no training; `loss` and `steps` are not needed), so the planner plans from measurements.
        public var kind: String
        public var loss: JobLoss
        public var steps: Int
        public var timeoutS: Int
        public var maxAttempts: Int
        public var learningRate: Double?
        public var batchSize: Int?
        /// Lease length that heartbeats renew; defaults to min(30, timeout_s).
        public var leaseS: Int?

        public init(kind: String = "adapt", loss: JobLoss, steps: Int, timeoutS: Int, maxAttempts: Int, learningRate: Double? = nil,
                    batchSize: Int? = nil, leaseS: Int? = nil) {
            self.kind = kind
            self.loss = loss
            self.steps = steps
            self.timeoutS = timeoutS
            self.maxAttempts = maxAttempts
            self.learningRate = learningRate
            self.batchSize = batchSize
            self.leaseS = leaseS
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? "adapt"
            let measuring = kind != "adapt"   // unknown kinds decode too, so validation can name job.kind
            loss = measuring ? try c.decodeIfPresent(JobLoss.self, forKey: .loss) ?? .noTraining : try c.decode(JobLoss.self, forKey: .loss)
            steps = measuring ? try c.decodeIfPresent(Int.self, forKey: .steps) ?? 0 : try c.decode(Int.self, forKey: .steps)
            timeoutS = try c.decode(Int.self, forKey: .timeoutS)
            maxAttempts = try c.decode(Int.self, forKey: .maxAttempts)
            learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate)
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
            leaseS = try c.decodeIfPresent(Int.self, forKey: .leaseS)
        }

        enum CodingKeys: String, CodingKey {
            case kind, loss, steps
            case timeoutS = "timeout_s"
            case maxAttempts = "max_attempts"
            case learningRate = "learning_rate"
            case batchSize = "batch_size"
            case leaseS = "lease_s"
        }
    }

    public static let maxDeviceIDs = 100_000

    public var effectiveRollout: Rollout { rollout ?? Rollout() }
    public var effectiveAbort: Abort { abort ?? Abort() }

    public func validate() -> [ValidationIssue] {
        var v = Validator()
        v.text(name, "name", maxLength: 128)
        v.text(description, "description", minLength: 0, maxLength: 4096, required: false)
        let labels = selector.labels ?? [:]
        let ids = selector.deviceIDs ?? []
        if labels.isEmpty && ids.isEmpty {
            v.fail("selector", "must name devices by non-empty labels or device_ids")
        } else if !labels.isEmpty && !ids.isEmpty {
            v.fail("selector", "must use labels or device_ids, not both")
        }
        Labels.validate(selector.labels, into: &v, field: "selector.labels")
        if ids.count > Self.maxDeviceIDs { v.fail("selector.device_ids", "must list at most \(Self.maxDeviceIDs) devices") }
        if Set(ids).count != ids.count { v.fail("selector.device_ids", "must not repeat a device") }
        if let r = rollout {
            v.number(r.canaryPct, "rollout.canary_pct", min: 0, max: 100, minExclusive: true)
            v.number(r.waveSizePct, "rollout.wave_size_pct", min: 0, max: 100, minExclusive: true)
            v.number(r.successThresholdPct, "rollout.success_threshold_pct", min: 0, max: 100)
            if let m = r.maxPerMinute { v.number(Double(m), "rollout.max_per_minute", min: 1, max: 1_000_000) }
        }
        if let a = abort {
            v.number(a.failureThresholdPct, "abort.failure_threshold_pct", min: 0, max: 100)
            v.number(Double(a.minExecuted), "abort.min_executed", min: 1, max: 1_000_000)
        }
        if !["adapt", "profile"].contains(job.kind) { v.fail("job.kind", "must be adapt or profile") }
        if job.kind == "adapt" {
            if !JobLoss.trainable.contains(job.loss) {
                v.fail("job.loss", JobLoss.expectation)
            }
            v.number(Double(job.steps), "job.steps", min: job.loss == .bnStats ? 0 : 1, max: 100_000)
        }
        v.number(Double(job.timeoutS), "job.timeout_s", min: 1, max: 86_400)
        v.number(Double(job.maxAttempts), "job.max_attempts", min: 1, max: 25)
        v.number(job.learningRate, "job.learning_rate", min: 0, max: 10, minExclusive: true, required: false)
        if let b = job.batchSize { v.number(Double(b), "job.batch_size", min: 1, max: 4096) }
        if let l = job.leaseS { v.number(Double(l), "job.lease_s", min: 1, max: 86_400) }
        if let w = window { w.validate(field: "window", into: &v) }
        if continuous == true, selector.deviceIDs != nil {
            v.fail("continuous", "needs a label selector (a list of device_ids never matches a later device)")
        }
        if let g = gate {
            v.number(g.minEntropyDrop, "gate.min_entropy_drop", min: -1e6, max: 1e6, required: false)
            v.number(g.maxAccuracyDrop, "gate.max_accuracy_drop", min: 0, max: 1)
            v.number(g.minDiversityRatio, "gate.min_diversity_ratio", min: 0, max: 10)
            v.number(g.maxEntropyRise, "gate.max_entropy_rise", min: 0, max: 100)
        }
        return v.issues
    }
}
