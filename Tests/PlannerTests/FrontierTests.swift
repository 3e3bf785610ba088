import Testing
@testable import Planner

@Suite struct FrontierTests {
    /// One reference frontier serves many devices; each lookup equals the exhaustive decision.
    @Test func frontierLookupEqualsExhaustiveSearchForRandomDevices() throws {
        var rng = SeededRNG(seed: 6)
        for round in 0..<60 {
            // Every fourth space is the structured 5×5 one, whose many equal drops and latencies make exact ties.
            let space = round % 4 != 1 ? Fixtures.randomSpace(&rng) : Fixtures.fiveByFive()
            let frontier = try PlanningFrontier(space: space)
            for _ in 0..<10 {
                let device = Fixtures.randomDevice(&rng, space: space, edge: rng.chance(0.5))
                let fast = try frontier.summary(for: device)
                #expect(fast == (try Planner.bruteForceSummary(space: space, device: device, frontier: frontier)))
                let plan = try frontier.plan(for: device)
                #expect(frontier.variants(ofCode: fast.code) == plan.variants)
                #expect(fast.splitAfterBlock == plan.partition?.splitAfterBlock)
            }
        }
    }

    @Test func frontierIsSmallerThanTheSpaceAndKeepsTheExtremes() throws {
        let space = Fixtures.fiveByFive()
        let frontier = try PlanningFrontier(space: space)
        #expect(frontier.frontierSize > 1 && frontier.frontierSize < 3125)
        // The most accurate and the fastest chains are both on it.
        #expect(frontier.chain.first!.drop == 0)
        let fastest = frontier.chain.min { $0.lat < $1.lat }!
        #expect(frontier.variants(ofCode: fastest.code) == [4, 4, 4, 4, 4])
    }

    @Test func fleetPlanEqualsPerDevicePlansAndFlagsInvalidProfiles() throws {
        var rng = SeededRNG(seed: 7)
        let space = Fixtures.fiveByFive()
        let frontier = try PlanningFrontier(space: space)
        var devices = (0..<2000).map { i in
            Fixtures.randomDevice(&rng, space: space, edge: rng.chance(0.3), measured: i % 100 == 0)
        }
        devices[17].gflops = -1
        let fleet = Planner.planFleet(devices, frontier: frontier)
        #expect(fleet.count == devices.count)
        #expect(fleet[17] == nil)
        for i in stride(from: 0, to: devices.count, by: 7) where i != 17 {
            #expect(fleet[i] == (try frontier.summary(for: devices[i])))
        }
        #expect(Planner.planFleet([], frontier: frontier).isEmpty)
    }

    @Test func measuredLatenciesOverrideTheReferenceScaling() throws {
        let space = Fixtures.fiveByFive()
        let frontier = try PlanningFrontier(space: space)
        var device = DeviceProfile(gflops: 20, hardwareClass: "jetson-tx2", latencyBudgetMs: 4.6, memoryBudgetMB: 64)
        let scaled = try frontier.plan(for: device)
        // The device measured that block 0's full variant is 10× slower than the reference predicts.
        device.measuredLatencyMs = space.blocks.map { $0.variants.map(\.referenceLatencyMs) }
        device.measuredLatencyMs![0][0] *= 10
        let measured = try frontier.plan(for: device)
        #expect(scaled.variants[0] == 0)
        #expect(measured.variants[0] != 0)
        #expect(measured == (try Planner.bruteForcePlan(space: space, device: device)))
    }
}

@Suite struct FrontierCacheTests {
    @Test func measuredFrontiersAreReusedUntilTheMeasurementChanges() throws {
        let space = Fixtures.fiveByFive()
        let cache = try FrontierCache(space: space, capacity: 2)
        var device = DeviceProfile(gflops: 10, hardwareClass: "phone", latencyBudgetMs: 3, memoryBudgetMB: 64)
        #expect(try cache.frontier(forDevice: "a", device).usesReferenceLatencies)
        #expect(cache.count == 0)
        device.measuredLatencyMs = space.blocks.map { $0.variants.map { $0.referenceLatencyMs * 2 } }
        let f = try cache.frontier(forDevice: "a", device)
        #expect(!f.usesReferenceLatencies)
        #expect(try f.plan(for: device) == (try Planner.bruteForcePlan(space: space, device: device)))
        // A context change (budget) reuses the frontier; a new measurement rebuilds it.
        device.latencyBudgetMs = 5
        #expect(try cache.frontier(forDevice: "a", device).summary(for: device)
                == (try Planner.bruteForceSummary(space: space, device: device, frontier: f)))
        device.measuredLatencyMs![0][0] *= 3
        let g = try cache.frontier(forDevice: "a", device)
        #expect(try g.plan(for: device) == (try Planner.bruteForcePlan(space: space, device: device)))
        _ = try cache.frontier(forDevice: "b", device)
        _ = try cache.frontier(forDevice: "c", device)
        #expect(cache.count == 2)
    }
}
