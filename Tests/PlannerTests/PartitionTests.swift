import Testing
@testable import Planner

@Suite struct PartitionTests {
    /// A weak device next to a strong server: a fast link makes cutting early worth it, a slow one does not.
    @Test func partitionIsChosenWhenBandwidthIsHighAndDroppedWhenItFalls() throws {
        let space = Fixtures.fiveByFive()
        var device = DeviceProfile(gflops: 1, hardwareClass: "raspberry-pi-4", latencyBudgetMs: 30, memoryBudgetMB: 64,
                                   edge: EdgeLink(bandwidthMbps: 500, rttMs: 1, serverGFLOPS: 400))
        let fast = try Planner.plan(space: space, device: device)
        #expect(fast.feasible)
        #expect(fast.partition != nil)
        #expect(fast.variantIDs == ["s0", "s0", "s0", "s0", "s0"])
        #expect(fast.reason.contains("cut after"))

        device.edge!.bandwidthMbps = 0.5
        let slow = try Planner.plan(space: space, device: device)
        #expect(slow.partition == nil)
        #expect(slow.feasible)
        #expect(slow.predicted.accuracy < fast.predicted.accuracy)
        // Without any link the answer is the same on-device plan.
        device.edge = nil
        #expect(try Planner.plan(space: space, device: device).variants == slow.variants)
    }

    @Test func neighbourFirstReplanEqualsTheFullSearch() throws {
        var rng = SeededRNG(seed: 5)
        var pruned = 0
        for _ in 0..<300 {
            let space = Fixtures.randomSpace(&rng)
            let frontier = try PlanningFrontier(space: space)
            let device = Fixtures.randomDevice(&rng, space: space, edge: true, measured: false)
            let previous = try frontier.plan(for: Fixtures.randomDevice(&rng, space: space, edge: true, measured: false))
            let full = try frontier.exhaustiveSplitSummary(for: device)
            let split = previous.partition?.splitAfterBlock
            #expect(try frontier.replanSummary(previousSplit: split, newContext: device) == full)
            #expect(try frontier.replan(previous: previous, newContext: device) == (try frontier.plan(for: device)))
            #expect(try frontier.summary(for: device) == full)
            if full.feasible, let k = full.splitAfterBlock, k != split { pruned += 1 }
        }
        #expect(pruned > 10)  // the widening path is exercised, not only the neighbours
    }

    @Test func energyCountsComputeAtDevicePowerAndRadioAtTxPower() throws {
        let space = Fixtures.fiveByFive()
        let device = DeviceProfile(gflops: 4, hardwareClass: "jetson-tx2", latencyBudgetMs: 100, memoryBudgetMB: 64)
        let plan = try Planner.plan(space: space, device: device)
        #expect(device.powerWatts == 7.5)
        #expect(Fixtures.close(plan.predicted.energyMJ, plan.predicted.latencyMs * 7.5))

        var linked = device
        linked.latencyBudgetMs = 3
        linked.edge = EdgeLink(bandwidthMbps: 2000, rttMs: 0.5, serverGFLOPS: 400, txPowerWatts: 1.5)
        let cut = try Planner.plan(space: space, device: linked)
        let p = try #require(cut.partition)
        let txMs = p.transferMs - 0.5
        #expect(Fixtures.close(cut.predicted.energyMJ, p.deviceLatencyMs * 7.5 + txMs * 1.5))
        #expect(Fixtures.close(cut.predicted.latencyMs, p.deviceLatencyMs + p.transferMs + p.edgeLatencyMs))
    }

    @Test func lowBatteryTightensTheEnergyBudget() throws {
        var device = DeviceProfile(gflops: 4, hardwareClass: "phone", latencyBudgetMs: 100, memoryBudgetMB: 64,
                                   energyBudgetMJ: 100, batteryPct: 50)
        #expect(device.effectiveEnergyBudgetMJ == 100)
        device.batteryPct = 10
        #expect(device.effectiveEnergyBudgetMJ == 50)
        device.batteryPct = 0
        #expect(device.effectiveEnergyBudgetMJ == 0)
        device.energyBudgetMJ = nil
        #expect(device.effectiveEnergyBudgetMJ == nil)

        // A budget that admits the full model at 80 % battery forces a cheaper one at 5 %.
        let space = Fixtures.fiveByFive()
        device.energyBudgetMJ = 80  // the full chain costs 22.75 ms × 3 W ≈ 68 mJ at 4 GFLOP/s
        device.batteryPct = 80
        let full = try Planner.plan(space: space, device: device)
        device.batteryPct = 5
        let low = try Planner.plan(space: space, device: device)
        #expect(low.feasible && low.predicted.energyMJ <= 80 * 5 / 20)
        #expect(low.predicted.accuracy < full.predicted.accuracy)
        #expect(low.bindingConstraint == .energy)
        #expect(low.reason.contains("battery 5%"))
    }

    @Test func hardwareClassTableAndJSONDefaults() throws {
        #expect(HardwareClass.powerWatts(for: "jetson-tx2") == 7.5)
        #expect(HardwareClass.powerWatts(for: "raspberry-pi-4") == 4)
        #expect(HardwareClass.powerWatts(for: "phone") == 3)
        #expect(HardwareClass.powerWatts(for: "x86-edge") == 25)
        #expect(HardwareClass.powerWatts(for: "toaster") == HardwareClass.fallbackPowerWatts)
        let json = #"{"gflops":5,"hardwareClass":"phone","latencyBudgetMs":10,"memoryBudgetMB":8,"edge":{"bandwidthMbps":50,"rttMs":2,"serverGFLOPS":100}}"#
        let d = try JSONDecoderShim.decode(DeviceProfile.self, from: json)
        #expect(d.powerWatts == 3 && d.objective == .accuracy && d.edge?.txPowerWatts == 1)
    }
}
