import FleetAPI
import Foundation

/// Splits a domain's targets into waves and sizes each device's job to its budgets. Pure: the coordinator reads the
/// devices, builds the plan, and writes its targets.
public struct RolloutPlan: Sendable {
    /// What the plan needs to know of a targeted device.
    public struct Device: Sendable, Equatable {
        public var id: UUID
        public var batteryPct: Double?
        public var energyBudgetMJ: Double?
        /// The model of the device's current config (its planned combination is for that model).
        public var configModelID: UUID?
        public var variants: [String]
        /// The planned combination's predicted energy per inference.
        public var predictedEnergyMJ: Double?

        public init(id: UUID, batteryPct: Double? = nil, energyBudgetMJ: Double? = nil, configModelID: UUID? = nil,
                    variants: [String] = [], predictedEnergyMJ: Double? = nil) {
            self.id = id
            self.batteryPct = batteryPct
            self.energyBudgetMJ = energyBudgetMJ
            self.configModelID = configModelID
            self.variants = variants
            self.predictedEnergyMJ = predictedEnergyMJ
        }
    }

    /// One device's job and the wave it is released in.
    public struct Target: Sendable, Equatable {
        public let deviceID: UUID
        public let wave: Int
        public let document: JobDocument

        public init(deviceID: UUID, wave: Int, document: JobDocument) {
            self.deviceID = deviceID
            self.wave = wave
            self.document = document
        }
    }

    public let targets: [Target]
    public let waveCount: Int

    /// Below this battery a device does not train: it applies the domain's aggregated adapters in the last wave.
    public static let minTrainingBatteryPct = 15.0
    /// Between that and this, training steps scale with the charge left.
    public static let fullTrainingBatteryPct = 50.0
    /// Adaptation may spend what this many inferences at the device's per-inference energy budget would.
    public static let trainingEnergyInInferences = 2_000.0

    /// Devices in the canary wave (wave 0) out of `n`: `canary_pct` of them rounded up, at least one.
    public static func canarySize(devices n: Int, _ rollout: DomainRequest.Rollout) -> Int {
        max(1, Int((Double(n) * rollout.canaryPct / 100).rounded(.up)))
    }

    /// Devices per later wave out of `n`: `wave_size_pct` of them rounded up, at least one.
    public static func waveSize(devices n: Int, _ rollout: DomainRequest.Rollout) -> Int {
        max(1, Int((Double(n) * rollout.waveSizePct / 100).rounded(.up)))
    }

    /// The wave of the `index`-th device (0-based): the first `canary` go to wave 0, then `waveSize` per wave.
    public static func wave(ofIndex index: Int, canary: Int, waveSize: Int) -> Int {
        index < canary ? 0 : 1 + (index - canary) / waveSize
    }

    /// The planned combination, when the device's config is for the campaign's model (else the agent runs the
    /// original blocks).
    public static func variants(_ device: Device, _ request: DomainRequest) -> [String] {
        device.configModelID == request.modelID ? device.variants : []
    }

    /// The share of the requested steps a device trains at `batteryPct` (nil: no battery, full): 1 at or above
    /// `fullTrainingBatteryPct`, proportional below it.
    public static func batteryFactor(_ batteryPct: Double?) -> Double {
        min(1, (batteryPct ?? 100) / fullTrainingBatteryPct)
    }

    /// Whether a device at this battery trains (else it applies the aggregate).
    public static func trains(batteryPct: Double?) -> Bool {
        (batteryPct ?? 100) >= minTrainingBatteryPct
    }

    /// Steps the energy budget allows: a training step costs about 3 × batch inferences (forward + backward) at
    /// the planned combination's predicted energy; the allowance is `trainingEnergyInInferences` inferences at the
    /// budget, scaled like the steps by the battery. nil when the device has no energy budget or no plan.
    public static func energyStepCap(_ device: Device, batchSize: Int, batteryFactor: Double) -> Int? {
        guard let budget = device.energyBudgetMJ, let perInference = device.predictedEnergyMJ, perInference > 0 else { return nil }
        let allowance = budget * trainingEnergyInInferences * batteryFactor
        return max(1, Int(allowance / (3 * Double(batchSize) * perInference)))
    }

    public init(devices: [Device], request: DomainRequest, domainID: UUID) {
        let n = devices.count
        let rollout = request.effectiveRollout
        let canary = Self.canarySize(devices: n, rollout)
        let waveSize = Self.waveSize(devices: n, rollout)
        if request.job.kind == "profile" {
            // Measuring costs no training: every device gets a `profile` job, in waves like any rollout.
            var targets: [Target] = []
            for (i, device) in devices.enumerated() {
                targets.append(.init(deviceID: device.id, wave: Self.wave(ofIndex: i, canary: canary, waveSize: waveSize), document: JobDocument(
                    kind: .profile, modelID: request.modelID, domainID: domainID, domainName: request.name, variants: [],
                    loss: .noTraining, steps: 0, learningRate: 0, batchSize: 1, budgetNote: "measures every variant's latency on the device")))
            }
            self.targets = targets
            self.waveCount = (targets.map(\.wave).max() ?? 0) + 1
            return
        }
        let trainers = devices.filter { Self.trains(batteryPct: $0.batteryPct) }
        let appliers = devices.filter { !Self.trains(batteryPct: $0.batteryPct) }
        var waves: [Int] = []
        for i in 0..<trainers.count { waves.append(Self.wave(ofIndex: i, canary: canary, waveSize: waveSize)) }
        let lastTrainingWave = waves.last ?? 0
        let applyWave = appliers.isEmpty ? lastTrainingWave : (trainers.isEmpty ? 0 : lastTrainingWave + 1)
        var targets: [Target] = []
        for (device, wave) in zip(trainers, waves) {
            let battery = device.batteryPct ?? 100
            let factor = Self.batteryFactor(device.batteryPct)
            var steps = request.job.loss == .bnStats ? request.job.steps : max(1, Int((Double(request.job.steps) * factor).rounded()))
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
