import FleetAPI
import Foundation
import HTTPServer
import PostgresClient

/// Domain-shift events: posting one creates its campaign and one job per targeted device.
struct DomainRoutes {
    let services: Services

    func register(on router: Router) {
        services.route(router, .POST, "/v1/domains", access: .admin, create)
        services.route(router, .GET, "/v1/domains", access: .admin, list)
        services.route(router, .GET, "/v1/domains/{id}", access: .admin, read)
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let key = try IdempotencyKey.from(request)
        let body = try request.decodeValidated(DomainRequest.self) { $0.validate() }
        let now = services.clock.now()
        let make = { (c: PostgresConnection) throws -> IdempotencyStore.StoredAnswer in
            let created = try createCampaign(body, now: now, on: c)
            return IdempotencyStore.StoredAnswer(status: 201, body: try JSON.bytes(created))
        }
        let answer: IdempotencyStore.StoredAnswer
        var replayed = false
        if let key {
            switch try services.idempotency.run(scope: "POST /v1/domains", key: key, requestBody: request.body, now: now,
                                                create: { c in let a = try make(c); return (a, a) },
                                                replay: { _, stored in stored }) {
            case .fresh(let a): answer = a
            case .replay(let a): answer = a; replayed = true
            case .keyReused:
                throw HTTPError(status: 422, code: "idempotency_key_reused", detail: "This Idempotency-Key was used with a different request body.",
                                errors: [FieldError(field: "Idempotency-Key", message: "was already used with a different body")])
            }
        } else {
            answer = try services.pool.withTransaction(make)
        }
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        if replayed { headers.set("Idempotent-Replayed", "true") }
        if let created = try? JSON.decode(DomainCreated.self, from: answer.body) {
            headers.set("Location", "/v1/domains/\(created.domain.id.uuidString.lowercased())")
        }
        return HTTPResponse(status: answer.status, headers: headers, body: answer.body)
    }

    /// Resolves the targets, plans each device's job, and writes domain, campaign and jobs in the caller's transaction.
    private func createCampaign(_ body: DomainRequest, now: Date, on c: PostgresConnection) throws -> DomainCreated {
        guard try !c.query("SELECT 1 FROM models WHERE id = \(body.modelID)").rows.isEmpty else {
            throw HTTPError(status: 422, code: "unknown_model", detail: "No model \(body.modelID.uuidString.lowercased()); publish it with POST /v1/models first.",
                            errors: [FieldError(field: "model_id", message: "must name a published model")])
        }
        let devices = try services.devices.targets(labels: body.selector.labels, ids: body.selector.deviceIDs, on: c)
        if let ids = body.selector.deviceIDs {
            let found = Set(devices.map(\.id))
            let missing = ids.filter { !found.contains($0) }
            if !missing.isEmpty {
                let shown = missing.prefix(5).map { $0.uuidString.lowercased() }.joined(separator: ", ")
                throw HTTPError(status: 422, code: "unknown_devices",
                                detail: "\(missing.count) selected device(s) do not exist or are decommissioned: \(shown)\(missing.count > 5 ? ", …" : "").",
                                errors: [FieldError(field: "selector.device_ids", message: "must name active devices")])
            }
        }
        guard !devices.isEmpty else {
            throw HTTPError(status: 422, code: "no_targets", detail: "The selector matches no active device.",
                            errors: [FieldError(field: "selector", message: "matches no active device")])
        }
        let domainID = UUID()
        let campaignID = UUID()
        let plan = RolloutPlan(devices: devices, request: body, domainID: domainID)
        try services.campaigns.create(domainID: domainID, campaignID: campaignID, request: body, targets: plan.targets,
                                      waveCount: plan.waveCount, now: now, on: c)
        guard let domain = try services.campaigns.domain(domainID, on: c),
              let campaign = try services.campaigns.view(campaignID, on: c) else {
            throw HTTPError.internalError("campaign \(campaignID)")
        }
        return DomainCreated(domain: domain, campaign: campaign)
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let query = try ListQuery(request)
        return try .body(try services.campaigns.domains(limit: query.limit, after: query.after))
    }

    func read(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let id = try request.uuidParameter("id")
        guard let domain = try services.campaigns.domain(id) else { throw HTTPError.notFound("No domain \(id.uuidString.lowercased()).") }
        return try .body(domain)
    }
}

/// Splits the targets into waves and sizes each device's job to its budgets.
struct RolloutPlan {
    let targets: [CampaignStore.Target]
    let waveCount: Int

    /// Below this battery a device does not train: it applies the domain's aggregated adapters in the last wave.
    static let minTrainingBatteryPct = 15.0
    /// Between that and this, training steps scale with the charge left.
    static let fullTrainingBatteryPct = 50.0
    /// Adaptation may spend what this many inferences at the device's per-inference energy budget would.
    static let trainingEnergyInInferences = 2_000.0

    /// The planned combination, when the device's config is for the campaign's model (else the agent runs the
    /// original blocks).
    static func variants(_ device: DeviceStore.Target, _ request: DomainRequest) -> [String] {
        device.configModelID == request.modelID ? device.variants : []
    }

    /// Steps the energy budget allows: a training step costs about 3 × batch inferences (forward + backward) at
    /// the planned combination's predicted energy; the allowance is `trainingEnergyInInferences` inferences at the
    /// budget, scaled like the steps by the battery. nil when the device has no energy budget or no plan.
    static func energyStepCap(_ device: DeviceStore.Target, batchSize: Int, batteryFactor: Double) -> Int? {
        guard let budget = device.energyBudgetMJ, let perInference = device.predictedEnergyMJ, perInference > 0 else { return nil }
        let allowance = budget * trainingEnergyInInferences * batteryFactor
        return max(1, Int(allowance / (3 * Double(batchSize) * perInference)))
    }

    init(devices: [DeviceStore.Target], request: DomainRequest, domainID: UUID) {
        let n = devices.count
        let rollout = request.effectiveRollout
        let canary = max(1, Int((Double(n) * rollout.canaryPct / 100).rounded(.up)))
        let waveSize = max(1, Int((Double(n) * rollout.waveSizePct / 100).rounded(.up)))
        if request.job.kind == "profile" {
            // Measuring costs no training: every device gets a `profile` job, in waves like any rollout.
            var targets: [CampaignStore.Target] = []
            for (i, device) in devices.enumerated() {
                targets.append(.init(deviceID: device.id, wave: i < canary ? 0 : 1 + (i - canary) / waveSize, document: JobDocument(
                    kind: .profile, modelID: request.modelID, domainID: domainID, domainName: request.name, variants: [],
                    loss: "none", steps: 0, learningRate: 0, batchSize: 1, budgetNote: "measures every variant's latency on the device")))
            }
            self.targets = targets
            self.waveCount = (targets.map(\.wave).max() ?? 0) + 1
            return
        }
        let trainers = devices.filter { ($0.batteryPct ?? 100) >= Self.minTrainingBatteryPct }
        let appliers = devices.filter { ($0.batteryPct ?? 100) < Self.minTrainingBatteryPct }
        var waves: [Int] = []
        for i in 0..<trainers.count { waves.append(i < canary ? 0 : 1 + (i - canary) / waveSize) }
        let lastTrainingWave = waves.last ?? 0
        let applyWave = appliers.isEmpty ? lastTrainingWave : (trainers.isEmpty ? 0 : lastTrainingWave + 1)
        var targets: [CampaignStore.Target] = []
        for (device, wave) in zip(trainers, waves) {
            let battery = device.batteryPct ?? 100
            let factor = min(1, battery / Self.fullTrainingBatteryPct)
            var steps = request.job.loss == "bn-stats" ? request.job.steps : max(1, Int((Double(request.job.steps) * factor).rounded()))
            var notes: [String] = factor < 1 ? ["steps scaled to \(Int(factor * 100))% for battery \(Int(battery))%"] : []
            let batch = request.job.batchSize ?? 64
            if let cap = Self.energyStepCap(device, batchSize: batch, batteryFactor: factor), cap < steps {
                steps = cap
                notes.append("capped at \(cap) steps by the energy budget (a step ≈ 3 × \(batch) inferences at the planned \(String(format: "%.2f", device.predictedEnergyMJ ?? 0)) mJ)")
            }
            targets.append(.init(deviceID: device.id, wave: wave, document: JobDocument(
                kind: .adapt, modelID: request.modelID, domainID: domainID, domainName: request.name, variants: Self.variants(device, request),
                loss: request.job.loss, steps: steps, learningRate: request.job.learningRate ?? 1e-3,
                batchSize: batch, budgetNote: notes.isEmpty ? nil : notes.joined(separator: "; "))))
        }
        for device in appliers {
            targets.append(.init(deviceID: device.id, wave: applyWave, document: JobDocument(
                kind: .apply, modelID: request.modelID, domainID: domainID, domainName: request.name, variants: Self.variants(device, request),
                loss: request.job.loss, steps: 0, learningRate: 0, batchSize: request.job.batchSize ?? 64,
                budgetNote: "battery \(Int(device.batteryPct ?? 0))% is under \(Int(Self.minTrainingBatteryPct))%: applies the domain's aggregated adapters instead of training")))
        }
        self.targets = targets
        self.waveCount = (targets.map(\.wave).max() ?? 0) + 1
    }
}
