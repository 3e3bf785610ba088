import FleetAPI
import Foundation
import Testing
@testable import Rollout

/// The wave split and the per-device budgets, without a database: exact against counting by hand.
@Suite struct RolloutPlanTests {
    static let model = UUID(uuidString: "00000000-0000-0000-0000-0000000000aa")!

    static func request(kind: String = "adapt", loss: JobLoss = .tent, steps: Int = 100, batchSize: Int? = nil,
                        canary: Double = 10, wave: Double = 30) -> DomainRequest {
        DomainRequest(name: "night", modelID: model, selector: .init(labels: [:]),
                      rollout: .init(canaryPct: canary, waveSizePct: wave),
                      job: .init(kind: kind, loss: loss, steps: steps, timeoutS: 60, maxAttempts: 3, batchSize: batchSize))
    }

    static func devices(_ n: Int, battery: Double? = nil) -> [RolloutPlan.Device] {
        (0..<n).map { RolloutPlan.Device(id: UUID(uuidString: String(format: "00000000-0000-0000-0000-%012d", $0))!, batteryPct: battery) }
    }

    /// The reference: the smallest count whose share of `n` is at least `pct` percent, and at least one.
    static func bruteForceShare(_ n: Int, _ pct: Double) -> Int {
        var k = 0
        while Double(k) * 100 < Double(n) * pct - 1e-9 { k += 1 }
        return max(1, k)
    }

    @Test(arguments: [1, 2, 3, 7, 10, 11, 33, 100, 101, 997])
    func canaryAndWaveSizesMatchACountByHand(n: Int) {
        for (canary, wave) in [(10.0, 30.0), (5, 25), (1, 1), (50, 50), (100, 100), (0.5, 12.5), (33, 33)] {
            let rollout = DomainRequest.Rollout(canaryPct: canary, waveSizePct: wave)
            #expect(RolloutPlan.canarySize(devices: n, rollout) == Self.bruteForceShare(n, canary), "n \(n) canary \(canary)")
            #expect(RolloutPlan.waveSize(devices: n, rollout) == Self.bruteForceShare(n, wave), "n \(n) wave \(wave)")
        }
    }

    @Test(arguments: [1, 2, 9, 10, 11, 50, 101])
    func everyDeviceGetsOneWaveInOrderAndWavesAreSized(n: Int) {
        let request = Self.request(canary: 10, wave: 30)
        let plan = RolloutPlan(devices: Self.devices(n), request: request, domainID: UUID())
        let canary = Self.bruteForceShare(n, 10), size = Self.bruteForceShare(n, 30)
        #expect(plan.targets.map(\.deviceID) == Self.devices(n).map(\.id))
        var expected: [Int: Int] = [:]
        var left = n, wave = 0
        while left > 0 {
            let take = min(left, wave == 0 ? canary : size)
            expected[wave] = take
            left -= take
            wave += 1
        }
        #expect(Dictionary(grouping: plan.targets, by: \.wave).mapValues(\.count) == expected)
        #expect(plan.waveCount == expected.count)
        #expect(plan.targets.map(\.wave) == plan.targets.map(\.wave).sorted())
    }

    @Test func profileJobsMeasureInWavesWithoutTraining() {
        let plan = RolloutPlan(devices: Self.devices(10, battery: 5), request: Self.request(kind: "profile"), domainID: UUID())
        #expect(plan.targets.allSatisfy { $0.document.kind == .profile && $0.document.steps == 0 && $0.document.loss == .noTraining })
        #expect(plan.targets.map(\.wave) == [0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
        #expect(plan.waveCount == 4)
    }

    @Test func underTheMinimumBatteryADeviceAppliesInTheWaveAfterTheLastTrainingOne() {
        var devices = Self.devices(4, battery: 80)
        devices[1].batteryPct = RolloutPlan.minTrainingBatteryPct - 0.1
        devices[3].batteryPct = 3
        // Of 4 devices, canary and waves are one device each (25%), counted over all targets.
        let plan = RolloutPlan(devices: devices, request: Self.request(canary: 25, wave: 25), domainID: UUID())
        let byDevice = Dictionary(uniqueKeysWithValues: plan.targets.map { ($0.deviceID, $0) })
        #expect(byDevice[devices[0].id]?.document.kind == .adapt)
        #expect(byDevice[devices[2].id]?.document.kind == .adapt)
        #expect(byDevice[devices[0].id]?.wave == 0)
        #expect(byDevice[devices[2].id]?.wave == 1)
        for i in [1, 3] {
            #expect(byDevice[devices[i].id]?.document.kind == .apply)
            #expect(byDevice[devices[i].id]?.document.steps == 0)
            #expect(byDevice[devices[i].id]?.wave == 2)
        }
        #expect(plan.waveCount == 3)
    }

    @Test func whenNoDeviceCanTrainAllApplyInWaveZero() {
        let plan = RolloutPlan(devices: Self.devices(3, battery: 1), request: Self.request(), domainID: UUID())
        #expect(plan.targets.allSatisfy { $0.document.kind == .apply && $0.wave == 0 })
        #expect(plan.waveCount == 1)
    }

    @Test func atTheMinimumBatteryADeviceTrains() {
        #expect(RolloutPlan.trains(batteryPct: RolloutPlan.minTrainingBatteryPct))
        #expect(!RolloutPlan.trains(batteryPct: RolloutPlan.minTrainingBatteryPct - 0.001))
        #expect(RolloutPlan.trains(batteryPct: nil))
    }

    @Test func stepsScaleWithTheBatteryUnderFullTrainingCharge() {
        #expect(RolloutPlan.batteryFactor(nil) == 1)
        #expect(RolloutPlan.batteryFactor(RolloutPlan.fullTrainingBatteryPct) == 1)
        #expect(RolloutPlan.batteryFactor(90) == 1)
        #expect(RolloutPlan.batteryFactor(25) == 0.5)
        var devices = Self.devices(3)
        devices[0].batteryPct = 25
        devices[1].batteryPct = 20
        devices[2].batteryPct = 100
        let plan = RolloutPlan(devices: devices, request: Self.request(steps: 100, canary: 100), domainID: UUID())
        #expect(plan.targets.map(\.document.steps) == [50, 40, 100])
        #expect(plan.targets[0].document.budgetNote == "steps scaled to 50% for battery 25%")
        #expect(plan.targets[2].document.budgetNote == nil)
    }

    @Test func bnStatsStepsAreNotScaledByTheBattery() {
        let plan = RolloutPlan(devices: Self.devices(1, battery: 20), request: Self.request(loss: .bnStats, steps: 7), domainID: UUID())
        #expect(plan.targets[0].document.steps == 7)
    }

    @Test func theEnergyBudgetCapsSteps() {
        // allowance 0.5 mJ × 2000 × 1 = 1000 mJ; a step 3 × 10 × 2 mJ = 60 mJ: 16 steps.
        let device = RolloutPlan.Device(id: UUID(), batteryPct: 100, energyBudgetMJ: 0.5, predictedEnergyMJ: 2)
        #expect(RolloutPlan.energyStepCap(device, batchSize: 10, batteryFactor: 1) == 16)
        #expect(RolloutPlan.energyStepCap(device, batchSize: 10, batteryFactor: 0.5) == 8)
        // Never below one step.
        #expect(RolloutPlan.energyStepCap(device, batchSize: 10_000, batteryFactor: 0.01) == 1)
        // No budget, no plan, or a zero prediction: no cap.
        #expect(RolloutPlan.energyStepCap(.init(id: UUID(), predictedEnergyMJ: 2), batchSize: 10, batteryFactor: 1) == nil)
        #expect(RolloutPlan.energyStepCap(.init(id: UUID(), energyBudgetMJ: 1), batchSize: 10, batteryFactor: 1) == nil)
        #expect(RolloutPlan.energyStepCap(.init(id: UUID(), energyBudgetMJ: 1, predictedEnergyMJ: 0), batchSize: 10, batteryFactor: 1) == nil)

        let plan = RolloutPlan(devices: [device], request: Self.request(steps: 100, batchSize: 10), domainID: UUID())
        #expect(plan.targets[0].document.steps == 16)
        #expect(plan.targets[0].document.budgetNote?.hasPrefix("capped at 16 steps by the energy budget") == true)
        // A cap above the requested steps changes nothing.
        let loose = RolloutPlan(devices: [device], request: Self.request(steps: 5, batchSize: 10), domainID: UUID())
        #expect(loose.targets[0].document.steps == 5)
        #expect(loose.targets[0].document.budgetNote == nil)
    }

    @Test func theDevicesPlannedVariantsGoOnlyToACampaignOfItsConfigsModel() {
        let mine = RolloutPlan.Device(id: UUID(), configModelID: Self.model, variants: ["b0:lite"])
        let other = RolloutPlan.Device(id: UUID(), configModelID: UUID(), variants: ["b0:lite"])
        let plan = RolloutPlan(devices: [mine, other], request: Self.request(canary: 100), domainID: UUID())
        #expect(plan.targets.map(\.document.variants) == [["b0:lite"], []])
    }
}
