import Testing
@testable import Planner

/// The DP (and its explanation) must equal exhaustive enumeration exactly: same variants, cut, costs, reason.
@Suite struct PlannerExactnessTests {
    @Test func exactPlanEqualsBruteForceOnDevice() throws {
        var rng = SeededRNG(seed: 1)
        var infeasible = 0, binding = 0
        for _ in 0..<300 {
            let space = Fixtures.randomSpace(&rng)
            let device = Fixtures.randomDevice(&rng, space: space, edge: false)
            let dp = try Planner.plan(space: space, device: device)
            let bf = try Planner.bruteForcePlan(space: space, device: device)
            #expect(dp == bf, "space \(space)\ndevice \(device)")
            if !dp.feasible { infeasible += 1 }
            if dp.feasible && dp.bindingConstraint != nil { binding += 1 }
        }
        // The generator must exercise both outcomes, or this test proves little.
        #expect(infeasible > 10 && binding > 10)
    }

    @Test func exactPlanEqualsBruteForceWithEdgeLink() throws {
        var rng = SeededRNG(seed: 2)
        var partitioned = 0, onDevice = 0
        for _ in 0..<300 {
            let space = Fixtures.randomSpace(&rng)
            let device = Fixtures.randomDevice(&rng, space: space, edge: true)
            let dp = try Planner.plan(space: space, device: device)
            let bf = try Planner.bruteForcePlan(space: space, device: device)
            #expect(dp == bf, "space \(space)\ndevice \(device)")
            if dp.feasible { if dp.partition == nil { onDevice += 1 } else { partitioned += 1 } }
        }
        #expect(partitioned > 20 && onDevice > 20)
    }

    /// A space whose drops are logit terms read through a logistic link (some negative: a variant may raise the
    /// score): the DP still equals brute force, and the plan's accuracy is the link of its summed drops.
    @Test func logisticLinkSpacesPlanExactlyAndReportTheLinkedAccuracy() throws {
        var rng = SeededRNG(seed: 11)
        var partitioned = 0, raised = 0
        for i in 0..<300 {
            var space = Fixtures.randomSpace(&rng)
            for b in space.blocks.indices {
                for v in space.blocks[b].variants.indices where v > 0 {
                    space.blocks[b].variants[v].accuracyDrop = rng.value(-0.2, 1.5, grid: 0.05)
                }
            }
            // Half the spaces with a link saturating below 1 (a ceiling just above a modest base accuracy).
            let link = AccuracyLink(floor: 0.1, ceiling: i % 2 == 0 ? 1 : rng.uniform(0.6, 0.95), score: rng.uniform(0.5, 3))
            space.accuracyLink = link
            let device = Fixtures.randomDevice(&rng, space: space, edge: i % 2 == 0)
            let dp = try Planner.plan(space: space, device: device)
            let bf = try Planner.bruteForcePlan(space: space, device: device)
            #expect(dp == bf, "space \(space)\ndevice \(device)")
            let drop = dp.variants.enumerated().reduce(0.0) { $0 + space.blocks[$1.offset].variants[$1.element].accuracyDrop }
            #expect(abs(dp.predicted.accuracy - link.accuracy(drop: drop)) < 1e-8)
            #expect((0...1).contains(dp.predicted.accuracy))
            if dp.partition != nil { partitioned += 1 }
            if drop < 0 { raised += 1 }
        }
        #expect(partitioned > 20 && raised > 5)
    }

    @Test func anOutOfRangeLinkIsRejectedWithTheField() throws {
        var space = Fixtures.fiveByFive()
        space.accuracyLink = AccuracyLink(floor: 0.7, score: 1)
        #expect(throws: PlanningError.invalidSpace("accuracyLink.floor: must be in 0...0.5")) { try PlanningFrontier(space: space) }
        space.accuracyLink = AccuracyLink(floor: 0.1, score: .infinity)
        #expect(throws: PlanningError.self) { try PlanningFrontier(space: space) }
        for ceiling in [0.1, 0.05, 1.01, .nan] {
            space.accuracyLink = AccuracyLink(floor: 0.1, ceiling: ceiling, score: 1)
            #expect(throws: PlanningError.invalidSpace("accuracyLink.ceiling: must be above the floor and at most 1")) { try PlanningFrontier(space: space) }
        }
    }

    @Test func feasiblePlansRespectEveryBudget() throws {
        var rng = SeededRNG(seed: 3)
        for i in 0..<400 {
            let space = Fixtures.randomSpace(&rng)
            let device = Fixtures.randomDevice(&rng, space: space, edge: i % 2 == 0)
            let plan = try Planner.plan(space: space, device: device)
            let c = Fixtures.costs(of: plan, space: space, device: device)
            #expect(Fixtures.close(c.latency, plan.predicted.latencyMs))
            #expect(Fixtures.close(c.memoryMB, plan.predicted.memoryMB))
            #expect(Fixtures.close(c.energy, plan.predicted.energyMJ, slack: 1e-4 * (device.powerWatts + 2)))
            #expect(abs(c.accuracy - plan.predicted.accuracy) < 1e-8)
            guard plan.feasible else { continue }
            // 1e-4 ms: the planner resolves each latency term to 1 ns.
            #expect(c.latency <= device.latencyBudgetMs * (1 + 1e-9) + 1e-4)
            #expect(c.memoryMB <= device.memoryBudgetMB * (1 + 1e-9))
            if let e = device.effectiveEnergyBudgetMJ { #expect(c.energy <= e * (1 + 1e-9)) }
        }
    }

    @Test func looseningAnyBudgetNeverLowersAccuracy() throws {
        var rng = SeededRNG(seed: 4)
        for i in 0..<200 {
            let space = Fixtures.randomSpace(&rng)
            let device = Fixtures.randomDevice(&rng, space: space, edge: i % 2 == 0, energy: true)
            let before = try Planner.plan(space: space, device: device)
            var looser = [device, device, device, device]
            looser[0].latencyBudgetMs *= rng.uniform(1, 2)
            looser[1].memoryBudgetMB *= rng.uniform(1, 2)
            looser[2].energyBudgetMJ = device.energyBudgetMJ.map { $0 * rng.uniform(1, 2) }
            looser[3].batteryPct = 100
            for relaxed in looser {
                let after = try Planner.plan(space: space, device: relaxed)
                if before.feasible {
                    #expect(after.feasible)
                    #expect(after.predicted.accuracy >= before.predicted.accuracy - 1e-12)
                }
            }
        }
    }

    @Test func infeasibleBudgetsNameTheBindingBudgetAndReturnTheClosestCombination() throws {
        let space = Fixtures.fiveByFive()
        // Fastest possible chain on this device is far above 0.5 ms: latency must be named.
        let device = DeviceProfile(gflops: 2, hardwareClass: "raspberry-pi-4", latencyBudgetMs: 0.5, memoryBudgetMB: 64)
        let plan = try Planner.plan(space: space, device: device)
        #expect(!plan.feasible)
        #expect(plan.bindingConstraint == .latency)
        #expect(plan.reason.contains("No combination fits"))
        #expect(plan.reason.contains("latency"))
        // Closest = fastest chain (every block skipped): minimises the only violated ratio.
        #expect(plan.variantIDs == ["skip", "skip", "skip", "skip", "skip"])
        #expect(plan == (try Planner.bruteForcePlan(space: space, device: device)))

        var tiny = device
        tiny.latencyBudgetMs = 1000
        tiny.memoryBudgetMB = 0.01
        let mem = try Planner.plan(space: space, device: tiny)
        #expect(!mem.feasible && mem.bindingConstraint == .memory)
        #expect(mem.reason.contains("memory"))
    }

    @Test func feasiblePlanNamesTheBudgetThatStopsMoreAccuracy() throws {
        let space = Fixtures.fiveByFive()
        var device = DeviceProfile(gflops: 20, hardwareClass: "jetson-tx2", latencyBudgetMs: 2.5, memoryBudgetMB: 64)
        let plan = try Planner.plan(space: space, device: device)
        #expect(plan.feasible && plan.bindingConstraint == .latency)
        #expect(plan.reason.contains("Latency binds"))
        device.latencyBudgetMs = 100
        let free = try Planner.plan(space: space, device: device)
        #expect(free.bindingConstraint == nil)
        #expect(free.variantIDs == ["s0", "s0", "s0", "s0", "s0"])
        #expect(free.predicted.accuracy == space.baseAccuracy)
    }

    @Test func invalidInputIsRejectedWithTheField() throws {
        let space = Fixtures.fiveByFive()
        var device = DeviceProfile(gflops: 0, hardwareClass: "phone", latencyBudgetMs: 10, memoryBudgetMB: 10)
        #expect(throws: PlanningError.invalidDevice("gflops: must be a positive finite number")) {
            try Planner.plan(space: space, device: device)
        }
        device.gflops = 5
        device.measuredLatencyMs = [[1]]
        #expect(throws: PlanningError.self) { try Planner.plan(space: space, device: device) }
        var bad = space
        bad.blocks[2].variants = []
        #expect(throws: PlanningError.self) { try PlanningFrontier(space: bad) }
    }
}
