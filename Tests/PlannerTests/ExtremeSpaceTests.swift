import Testing
@testable import Planner

/// The planner at the edges of what it accepts: every figure at its bound, devices at the extremes of what their
/// profile allows. Nothing may trap (a trap kills the coordinator's re-plan, at every start); out-of-bound spaces
/// are refused naming the field.
@Suite struct ExtremeSpaceTests {
    static func space(blocks: Int, variants: Int, drop: Double, referenceGFLOPS: Double, stemMs: Double = PlanningSpace.maxLatencyMs) -> PlanningSpace {
        let b = PlanningSpace.maxBytes, ms = PlanningSpace.maxLatencyMs
        let fixed = FixedCost(referenceLatencyMs: stemMs, flops: PlanningSpace.maxFLOPs, paramBytes: b, peakActivationBytes: b)
        return PlanningSpace(
            blocks: (0..<blocks).map { i in
                BlockOption(name: "b\(i)", variants: (0..<variants).map { v in
                    VariantProfile(id: "v\(v)", referenceLatencyMs: v == 0 ? ms : 0, flops: PlanningSpace.maxFLOPs, paramBytes: v == 0 ? b : 0,
                                   peakActivationBytes: b, outputBytes: v == 0 ? b : 0, accuracyDrop: v == 0 ? -drop : drop)
                })
            },
            baseAccuracy: PlanningSpace.maxAccuracyMagnitude, referenceGFLOPS: referenceGFLOPS, stem: fixed, head: fixed, inputBytes: b)
    }

    static func devices(_ space: PlanningSpace) -> [DeviceProfile] {
        var out: [DeviceProfile] = []
        for gflops in [1e-300, 1, 1e300] {
            for budget in [0, 1, 1e300, .infinity] {
                for edge in [nil, EdgeLink(bandwidthMbps: 1e-300, rttMs: 1e300, serverGFLOPS: 1e-300),
                             EdgeLink(bandwidthMbps: 1e300, rttMs: 0, serverGFLOPS: 1e300, txPowerWatts: 1e300)] {
                    out.append(DeviceProfile(gflops: gflops, hardwareClass: "x", powerWatts: 1e300, latencyBudgetMs: budget,
                                             memoryBudgetMB: budget, energyBudgetMJ: budget, batteryPct: 0, edge: edge))
                    var measured = out[out.count - 1]
                    measured.measuredLatencyMs = space.blocks.map { $0.variants.map { _ in 1e300 } }
                    out.append(measured)
                }
            }
        }
        return out
    }

    static func planEverything(_ space: PlanningSpace) throws {
        let frontier = try PlanningFrontier(space: space)
        for device in devices(space) {
            let plan = try frontier.plan(for: device)
            #expect(plan.variants.count == space.blocks.count)
            #expect(plan.predicted.accuracy.isFinite)
            _ = try frontier.summary(for: device)
            _ = try frontier.exhaustiveSplitSummary(for: device)
            _ = try frontier.replan(previous: plan, newContext: device)
            _ = try frontier.replanSummary(previousSplit: space.blocks.count - 2, newContext: device)
        }
    }

    @Test func aSpaceAtEveryBoundPlansWithoutTrapping() throws {
        // 62 blocks of 2 variants (2^62 combinations, the package limit), drops at ±the bound, every size and latency at its bound.
        try Self.planEverything(Self.space(blocks: 62, variants: 2, drop: PlanningSpace.maxAccuracyMagnitude, referenceGFLOPS: PlanningSpace.maxReferenceGFLOPS))
        // The planner's own block limit, and the smallest reference throughput.
        try Self.planEverything(Self.space(blocks: PlanningSpace.maxBlocks, variants: 1, drop: PlanningSpace.maxAccuracyMagnitude,
                                           referenceGFLOPS: .leastNonzeroMagnitude))
    }

    /// 0 ms of stem on a device whose scale overflows to ∞ is 0 × ∞ = NaN: counted as the slowest latency, not a trap.
    @Test func aZeroLatencyTimesAnInfiniteScaleDoesNotTrap() throws {
        let space = Self.space(blocks: 3, variants: 2, drop: 0.1, referenceGFLOPS: PlanningSpace.maxReferenceGFLOPS, stemMs: 0)
        var device = DeviceProfile(gflops: 1e-300, hardwareClass: "x", latencyBudgetMs: 10, memoryBudgetMB: 1e300)
        device.measuredLatencyMs = space.blocks.map { $0.variants.map { _ in 1 } }
        let plan = try PlanningFrontier(space: space, device: device).plan(for: device)
        #expect(!plan.feasible)
        #expect(latencyUnits(.nan) == maxLatencyUnits)
        #expect(latencyUnits(-.infinity) == 0)
    }

    @Test func figuresBeyondTheBoundsAreRefusedNamingTheField() throws {
        var space = Self.space(blocks: 3, variants: 2, drop: 0.1, referenceGFLOPS: 10)
        space.blocks[2].variants[1].paramBytes = Int.max - 7
        #expect(throws: PlanningError.invalidSpace("blocks[2].variants[1].paramBytes: must be in 0...\(PlanningSpace.maxBytes) bytes")) {
            try PlanningFrontier(space: space)
        }
        var slow = Self.space(blocks: 3, variants: 2, drop: 0.1, referenceGFLOPS: 10)
        slow.head.referenceLatencyMs = PlanningSpace.maxLatencyMs * 2
        #expect(throws: PlanningError.invalidSpace("head.referenceLatencyMs: must be in 0...\(PlanningSpace.maxLatencyMs) ms")) {
            try PlanningFrontier(space: slow)
        }
        var long = Self.space(blocks: PlanningSpace.maxBlocks + 1, variants: 1, drop: 0.1, referenceGFLOPS: 10)
        #expect(throws: PlanningError.self) { try PlanningFrontier(space: long) }
        long.blocks.removeLast()
        _ = try PlanningFrontier(space: long)
    }
}
