import Foundation

/// When a trigger fires: enough of its devices drifting beyond `threshold` on `metric`, for at least `for_s`.
public struct TriggerCondition: Codable, Sendable, Equatable {
    public enum Metric: String, Codable, Sendable, CaseIterable {
        case entropyRise = "entropy_rise"
        case confidenceDrop = "confidence_drop"
    }

    /// `entropy_rise` or `confidence_drop` (kept as text so an unknown one is refused naming the field).
    public var metric: String
    public var threshold: Double
    /// At least this many matching devices beyond the threshold (default 1 when `min_pct` is absent too).
    public var minDevices: Int?
    /// At least this share (percent) of the matching active devices beyond the threshold.
    public var minPct: Double?
    /// How long the condition must hold before the trigger fires (seconds, default 0).
    public var forS: Int?

    public init(metric: Metric, threshold: Double, minDevices: Int? = nil, minPct: Double? = nil, forS: Int? = nil) {
        self.metric = metric.rawValue
        self.threshold = threshold
        self.minDevices = minDevices
        self.minPct = minPct
        self.forS = forS
    }

    enum CodingKeys: String, CodingKey {
        case metric, threshold
        case minDevices = "min_devices"
        case minPct = "min_pct"
        case forS = "for_s"
    }

    public var knownMetric: Metric? { Metric(rawValue: metric) }
    public var effectiveForS: Int { forS ?? 0 }

    /// Whether `beyond` of `matching` devices satisfy the condition (never with no device beyond).
    public func holds(matching: Int, beyond: Int) -> Bool {
        guard beyond > 0 else { return false }
        if let minPct { return matching > 0 && Double(beyond) * 100 >= minPct * Double(matching) }
        return beyond >= (minDevices ?? 1)
    }

    func validate(into v: inout Validator) {
        guard let metric = knownMetric else {
            let allowed = Metric.allCases.map(\.rawValue).joined(separator: ", ")
            v.fail("condition.metric", "must be one of: \(allowed)")
            validateCounts(into: &v)
            return
        }
        v.number(threshold, "condition.threshold", min: 0, max: metric == .entropyRise ? DriftReport.maxEntropy : 1, minExclusive: true)
        validateCounts(into: &v)
    }

    private func validateCounts(into v: inout Validator) {
        if minDevices != nil && minPct != nil {
            v.fail("condition.min_pct", "must not be given together with condition.min_devices")
        }
        if let minDevices { v.number(Double(minDevices), "condition.min_devices", min: 1, max: Double(DomainRequest.maxDeviceIDs)) }
        v.number(minPct, "condition.min_pct", min: 0, max: 100, minExclusive: true, required: false)
        if let forS { v.number(Double(forS), "condition.for_s", min: 0, max: 86_400) }
    }
}

/// What a fired trigger creates: the domain's model (default: the model the drifting devices' configs run), its
/// job, rollout, abort rule and quality gate. The selector is the drifting devices themselves.
public struct DomainTemplate: Codable, Sendable, Equatable {
    public var modelID: UUID?
    public var job: DomainRequest.JobSpec
    public var rollout: DomainRequest.Rollout?
    public var abort: DomainRequest.Abort?
    public var gate: QualityGate?

    public init(modelID: UUID? = nil, job: DomainRequest.JobSpec, rollout: DomainRequest.Rollout? = nil, abort: DomainRequest.Abort? = nil,
                gate: QualityGate? = nil) {
        self.modelID = modelID
        self.job = job
        self.rollout = rollout
        self.abort = abort
        self.gate = gate
    }

    enum CodingKeys: String, CodingKey {
        case job, rollout, abort, gate
        case modelID = "model_id"
    }
}

/// Body of `POST /v1/triggers`: watch the devices `selector` matches and create a domain and its campaign over
/// those drifting when `condition` holds, at most once per `cooldown_s`.
public struct TriggerRequest: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var selector: DomainRequest.Selector
    public var condition: TriggerCondition
    /// Seconds after a firing during which the trigger does not fire again (default 3600).
    public var cooldownS: Int?
    public var domainTemplate: DomainTemplate
    /// Default true; a disabled trigger is not evaluated.
    public var enabled: Bool?

    public init(name: String, description: String? = nil, selector: DomainRequest.Selector, condition: TriggerCondition, cooldownS: Int? = nil,
                domainTemplate: DomainTemplate, enabled: Bool? = nil) {
        self.name = name
        self.description = description
        self.selector = selector
        self.condition = condition
        self.cooldownS = cooldownS
        self.domainTemplate = domainTemplate
        self.enabled = enabled
    }

    enum CodingKeys: String, CodingKey {
        case name, description, selector, condition, enabled
        case cooldownS = "cooldown_s"
        case domainTemplate = "domain_template"
    }

    public static let defaultCooldownS = 3600
    public var effectiveCooldownS: Int { cooldownS ?? Self.defaultCooldownS }

    /// The domain this trigger would create over `devices` with `model`.
    public func domain(model: UUID, devices: [UUID], name domainName: String, description: String) -> DomainRequest {
        DomainRequest(name: domainName, description: description, modelID: model, selector: DomainRequest.Selector(deviceIDs: devices),
                      rollout: domainTemplate.rollout, abort: domainTemplate.abort, job: domainTemplate.job, gate: domainTemplate.gate)
    }

    /// The trigger's own fields, then the template's as a domain would check them (`DomainRequest.validate`), named
    /// under `domain_template.`.
    public func validate() -> [ValidationIssue] {
        var v = Validator()
        v.text(name, "name", maxLength: 100)
        v.text(description, "description", minLength: 0, maxLength: 4096, required: false)
        condition.validate(into: &v)
        if let cooldownS { v.number(Double(cooldownS), "cooldown_s", min: 0, max: 30 * 86_400) }
        let probe = DomainRequest(name: name.isEmpty ? "x" : String(name.prefix(100)), modelID: domainTemplate.modelID ?? UUID(), selector: selector,
                                  rollout: domainTemplate.rollout, abort: domainTemplate.abort, job: domainTemplate.job, gate: domainTemplate.gate)
        for issue in probe.validate() where issue.field != "name" && issue.field != "description" {
            let own = issue.field.hasPrefix("selector")
            v.fail(own ? issue.field : "domain_template." + issue.field, issue.message)
        }
        return v.issues
    }
}

/// Body of `PATCH /v1/triggers/{id}` (with `If-Match`): the fields to change; the result is checked as a whole.
public struct TriggerPatch: Codable, Sendable, Equatable {
    public var name: String?
    public var description: String?
    public var selector: DomainRequest.Selector?
    public var condition: TriggerCondition?
    public var cooldownS: Int?
    public var domainTemplate: DomainTemplate?
    public var enabled: Bool?

    public init(name: String? = nil, description: String? = nil, selector: DomainRequest.Selector? = nil, condition: TriggerCondition? = nil,
                cooldownS: Int? = nil, domainTemplate: DomainTemplate? = nil, enabled: Bool? = nil) {
        self.name = name
        self.description = description
        self.selector = selector
        self.condition = condition
        self.cooldownS = cooldownS
        self.domainTemplate = domainTemplate
        self.enabled = enabled
    }

    enum CodingKeys: String, CodingKey {
        case name, description, selector, condition, enabled
        case cooldownS = "cooldown_s"
        case domainTemplate = "domain_template"
    }

    public func applied(to request: TriggerRequest) -> TriggerRequest {
        var r = request
        if let name { r.name = name }
        if let description { r.description = description }
        if let selector { r.selector = selector }
        if let condition { r.condition = condition }
        if let cooldownS { r.cooldownS = cooldownS }
        if let domainTemplate { r.domainTemplate = domainTemplate }
        if let enabled { r.enabled = enabled }
        return r
    }
}

/// A trigger as `GET /v1/triggers/{id}` shows it. `version` backs the `ETag`.
public struct TriggerView: Codable, Sendable, Equatable {
    public var id: UUID
    public var spec: TriggerRequest
    public var enabled: Bool
    public var version: Int
    /// Since when the condition has held without a break (nil: it does not hold now).
    public var conditionSince: Date?
    public var lastFiredAt: Date?
    public var firedCount: Int
    /// The domain its last firing created.
    public var lastDomainID: UUID?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID, spec: TriggerRequest, enabled: Bool, version: Int, conditionSince: Date?, lastFiredAt: Date?, firedCount: Int,
                lastDomainID: UUID?, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.spec = spec
        self.enabled = enabled
        self.version = version
        self.conditionSince = conditionSince
        self.lastFiredAt = lastFiredAt
        self.firedCount = firedCount
        self.lastDomainID = lastDomainID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, spec, enabled, version
        case conditionSince = "condition_since"
        case lastFiredAt = "last_fired_at"
        case firedCount = "fired_count"
        case lastDomainID = "last_domain_id"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public var etag: String { "\"v\(version)\"" }
}

/// Where a domain came from when a trigger created it (`origin` on `GET /v1/domains/{id}`).
public struct DomainOrigin: Codable, Sendable, Equatable {
    public var triggerID: UUID
    public var firedAt: Date
    /// The drifting devices the domain's campaign targets.
    public var deviceIDs: [UUID]

    public init(triggerID: UUID, firedAt: Date, deviceIDs: [UUID]) {
        self.triggerID = triggerID
        self.firedAt = firedAt
        self.deviceIDs = deviceIDs
    }

    enum CodingKeys: String, CodingKey {
        case triggerID = "trigger_id"
        case firedAt = "fired_at"
        case deviceIDs = "device_ids"
    }
}
