import Testing
@testable import Planner

/// Seeded generator so every random test is reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomSpace(_ rng: inout SplitMix64, blocks: Int = Int.random(in: 1...5), variants: ClosedRange<Int> = 1...5) -> PlanningSpace {
    var names: [String] = []
    var all: [[VariantProfile]] = []
    for b in 0..<blocks {
        names.append("b\(b)")
        let out = Int.random(in: 1_000...200_000, using: &rng)
        all.append((0..<Int.random(in: variants, using: &rng)).map { v in
            VariantProfile(id: "v\(v)", referenceLatencyMs: Double.random(in: 0.1...5, using: &rng), flops: 1e6,
                           paramBytes: Int.random(in: 1_000...400_000, using: &rng),
                           peakActivationBytes: Int.random(in: 1_000...300_000, using: &rng), outputBytes: out,
                           accuracyDrop: v == 0 ? 0 : Double.random(in: 0...0.05, using: &rng))
        })
    }
    return PlanningSpace(blockNames: names, blocks: all, baseAccuracy: 0.9, referenceGFLOPS: 10,
                         stem: FixedCost(referenceLatencyMs: 0.2, paramBytes: 2_000, peakActivationBytes: 50_000, stemOutputBytes: 100_000),
                         head: FixedCost(referenceLatencyMs: 0.05, paramBytes: 3_000, peakActivationBytes: 1_000, stemOutputBytes: 0))
}

func randomDevice(_ rng: inout SplitMix64, space: PlanningSpace, edge: Bool) -> DeviceProfile {
    DeviceProfile(gflops: Double.random(in: 1...50, using: &rng), powerWatts: Double.random(in: 1...10, using: &rng),
                  latencyBudgetMs: Double.random(in: 1...30, using: &rng), memoryBudgetMB: Double.random(in: 0.2...2.5, using: &rng),
                  energyBudgetMJ: Bool.random(using: &rng) ? Double.random(in: 5...150, using: &rng) : nil,
                  batteryPct: Bool.random(using: &rng) ? Double.random(in: 0...100, using: &rng) : nil,
                  edge: edge ? EdgeLink(bandwidthMbps: Double.random(in: 1...500, using: &rng), rttMs: Double.random(in: 0.5...20, using: &rng),
                                        serverGFLOPS: Double.random(in: 50...500, using: &rng)) : nil)
}

/// Every combination and every split, costed independently of the planner's dynamic program.
struct BruteForce {
    struct Result { var feasible: Bool; var accuracy: Double; var latency: Double; var energy: Double; var memoryBytes: Int }

    static func costs(_ s: PlanningSpace, _ d: DeviceProfile, _ choice: [Int], split: Int?) -> Result {
        let devScale = s.referenceGFLOPS / d.gflops
        var latency = s.stem.referenceLatencyMs * devScale
        var device = latency
        var params = s.stem.paramBytes
        var act = s.stem.peakActivationBytes
        var drop = 0.0
        for (i, v) in choice.enumerated() {
            let p = s.blocks[i][v]
            drop += p.accuracyDrop
            if split.map({ i <= $0 }) ?? true {
                let l = d.measuredLatencyMs?[i][v] ?? p.referenceLatencyMs * devScale
                latency += l
                device += l
                params += p.paramBytes
                act = max(act, p.peakActivationBytes)
            } else {
                latency += p.referenceLatencyMs * s.referenceGFLOPS / d.edge!.serverGFLOPS
            }
        }
        var transfer = 0.0
        if let split, let edge = d.edge {
            transfer = edge.transferMs(split < 0 ? s.stem.stemOutputBytes : s.blocks[split][0].outputBytes)
            latency += transfer + s.head.referenceLatencyMs * s.referenceGFLOPS / edge.serverGFLOPS
        } else {
            latency += s.head.referenceLatencyMs * devScale
            device += s.head.referenceLatencyMs * devScale
            params += s.head.paramBytes
            act = max(act, s.head.peakActivationBytes)
        }
        let energy = d.powerWatts * device + DeviceProfile.transmitWatts * transfer
        let memory = params + act
        var ok = latency <= d.latencyBudgetMs + 1e-9 && memory <= Int((d.memoryBudgetMB * 1_048_576).rounded(.down))
        if let e = d.effectiveEnergyBudgetMJ { ok = ok && energy <= e + 1e-9 }
        return Result(feasible: ok, accuracy: s.baseAccuracy - drop, latency: latency, energy: energy, memoryBytes: memory)
    }

    static func all(_ s: PlanningSpace) -> [[Int]] {
        var out: [[Int]] = [[]]
        for b in s.blocks { out = out.flatMap { prefix in b.indices.map { prefix + [$0] } } }
        return out
    }

    /// Best feasible (accuracy, then latency) over combinations and splits; nil when nothing fits.
    static func best(_ s: PlanningSpace, _ d: DeviceProfile) -> Result? {
        var splits: [Int?] = [nil]
        if d.edge != nil { splits += (-1..<(s.blocks.count - 1)).map { $0 } }
        var best: Result?
        for combo in all(s) {
            for split in splits {
                let r = costs(s, d, combo, split: split)
                guard r.feasible else { continue }
                if best == nil || r.accuracy > best!.accuracy + 1e-12
                    || (abs(r.accuracy - best!.accuracy) <= 1e-12 && r.latency < best!.latency - 1e-12) {
                    best = r
                }
            }
        }
        return best
    }
}

@Suite struct PlannerTests {
    @Test func exactOptimumEqualsBruteForceOnRandomSpaces() {
        var rng = SplitMix64(state: 42)
        var feasibleSeen = 0, infeasibleSeen = 0, partitionsSeen = 0
        for trial in 0..<400 {
            let space = randomSpace(&rng)
            let device = randomDevice(&rng, space: space, edge: trial % 2 == 1)
            let plan = Planner(space: space).plan(device)
            let truth = BruteForce.best(space, device)
            #expect(plan.feasible == (truth != nil), "trial \(trial)")
            guard let truth else { infeasibleSeen += 1; continue }
            feasibleSeen += 1
            if plan.partition != nil { partitionsSeen += 1 }
            #expect(abs(plan.predicted.accuracy - truth.accuracy) < 1e-9, "trial \(trial): \(plan.predicted.accuracy) vs \(truth.accuracy)")
            #expect(abs(plan.predicted.latencyMs - truth.latency) < 1e-9, "trial \(trial): latency \(plan.predicted.latencyMs) vs \(truth.latency)")
            // The plan's own figures are what an independent costing of its choice gives.
            let check = BruteForce.costs(space, device, plan.variants, split: plan.partition?.splitAfterBlock)
            #expect(check.feasible)
            #expect(abs(check.latency - plan.predicted.latencyMs) < 1e-9)
            #expect(abs(check.energy - plan.predicted.energyMJ) < 1e-9)
        }
        // The random cases must exercise every branch, or the comparison proves little.
        #expect(feasibleSeen > 100 && infeasibleSeen > 10 && partitionsSeen > 10, "\(feasibleSeen) \(infeasibleSeen) \(partitionsSeen)")
    }

    @Test func budgetsAreAlwaysRespected() {
        var rng = SplitMix64(state: 7)
        for _ in 0..<300 {
            let space = randomSpace(&rng)
            let device = randomDevice(&rng, space: space, edge: Bool.random(using: &rng))
            let plan = Planner(space: space).plan(device)
            guard plan.feasible else { continue }
            #expect(plan.predicted.latencyMs <= device.latencyBudgetMs + 1e-9)
            #expect(plan.predicted.memoryMB <= device.memoryBudgetMB + 1e-9)
            if let e = device.effectiveEnergyBudgetMJ { #expect(plan.predicted.energyMJ <= e + 1e-9) }
        }
    }

    @Test func looserBudgetsNeverLowerAccuracy() {
        var rng = SplitMix64(state: 99)
        for _ in 0..<200 {
            let space = randomSpace(&rng)
            var device = randomDevice(&rng, space: space, edge: Bool.random(using: &rng))
            let planner = Planner(space: space)
            let before = planner.plan(device)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: device.latencyBudgetMs *= 1.5
            case 1: device.memoryBudgetMB *= 1.5
            default: device.energyBudgetMJ = device.energyBudgetMJ.map { $0 * 1.5 }
            }
            let after = planner.plan(device)
            if before.feasible {
                #expect(after.feasible)
                #expect(after.predicted.accuracy >= before.predicted.accuracy - 1e-12)
            }
        }
    }

    /// Two blocks; the full-size variants only fit the latency budget when the heavy second block runs on a fast server.
    func partitionSpace() -> PlanningSpace {
        let big = VariantProfile(id: "s0", referenceLatencyMs: 10, flops: 1e8, paramBytes: 1_000, peakActivationBytes: 1_000, outputBytes: 10_000, accuracyDrop: 0)
        let small = VariantProfile(id: "s75", referenceLatencyMs: 2, flops: 2e7, paramBytes: 300, peakActivationBytes: 1_000, outputBytes: 10_000, accuracyDrop: 0.08)
        return PlanningSpace(blockNames: ["b0", "b1"], blocks: [[big, small], [big, small]], baseAccuracy: 0.9, referenceGFLOPS: 10,
                             stem: FixedCost(referenceLatencyMs: 0.1, paramBytes: 100, peakActivationBytes: 100, stemOutputBytes: 50_000),
                             head: FixedCost(referenceLatencyMs: 0.1, paramBytes: 100, peakActivationBytes: 100, stemOutputBytes: 0))
    }

    @Test func partitionChosenWhenBandwidthIsHighAndDroppedWhenItFalls() {
        let space = partitionSpace()
        var device = DeviceProfile(gflops: 10, powerWatts: 5, latencyBudgetMs: 15, memoryBudgetMB: 1,
                                   edge: EdgeLink(bandwidthMbps: 1000, rttMs: 1, serverGFLOPS: 100))
        let fast = Planner(space: space).plan(device)
        #expect(fast.feasible)
        #expect(fast.partition != nil)   // here everything after the stem goes to the 10× faster server
        #expect(abs(fast.predicted.accuracy - 0.9) < 1e-12)
        device.edge!.bandwidthMbps = 0.5
        let slow = Planner(space: space).plan(device)
        #expect(slow.partition == nil)
        #expect(slow.predicted.accuracy < 0.9)
        device.edge = nil
        #expect(Planner(space: space).plan(device).partition == nil)
    }

    @Test func infeasibleBudgetsNameTheBindingBudget() {
        let space = partitionSpace()
        let tooFast = DeviceProfile(gflops: 10, powerWatts: 5, latencyBudgetMs: 0.5, memoryBudgetMB: 10)
        let plan = Planner(space: space).plan(tooFast)
        #expect(!plan.feasible)
        #expect(plan.bindingConstraint == .latency)
        #expect(plan.variants == [1, 1])   // the closest combination: the fastest one
        #expect(plan.reason.contains("latency"))
        let tooSmall = DeviceProfile(gflops: 10, powerWatts: 5, latencyBudgetMs: 100, memoryBudgetMB: 0.0001)
        #expect(Planner(space: space).plan(tooSmall).bindingConstraint == .memory)
        let tooHungry = DeviceProfile(gflops: 10, powerWatts: 5, latencyBudgetMs: 100, memoryBudgetMB: 10, energyBudgetMJ: 1)
        #expect(Planner(space: space).plan(tooHungry).bindingConstraint == .energy)
    }

    @Test func batteryTightensTheEnergyBudget() {
        var d = DeviceProfile(gflops: 10, powerWatts: 5, latencyBudgetMs: 100, memoryBudgetMB: 10, energyBudgetMJ: 100, batteryPct: 80)
        #expect(d.effectiveEnergyBudgetMJ == 100)
        d.batteryPct = 5
        #expect(d.effectiveEnergyBudgetMJ == 25)
        // 25 mJ at 5 W allows 5 ms: only the small variants fit, where 100 mJ allowed the big ones.
        let space = partitionSpace()
        d.batteryPct = 80
        let charged = Planner(space: space).plan(d)
        d.batteryPct = 5
        let low = Planner(space: space).plan(d)
        #expect(charged.predicted.accuracy > low.predicted.accuracy)
        #expect(low.predicted.energyMJ <= 25 + 1e-9)
    }

    @Test func measuredLatenciesReplaceScaledOnes() {
        let space = partitionSpace()
        var d = DeviceProfile(gflops: 10, powerWatts: 5, latencyBudgetMs: 12, memoryBudgetMB: 10)
        #expect(Planner(space: space).plan(d).predicted.accuracy < 0.9)
        d.measuredLatencyMs = [[4, 1], [4, 1]]   // this device is faster than its GFLOP/s suggest
        let plan = Planner(space: space).plan(d)
        #expect(plan.variants == [0, 0])
        #expect(abs(plan.predicted.latencyMs - 8.2) < 1e-9)
    }

    @Test func frontierLookupEqualsTheFullPlanner() {
        var rng = SplitMix64(state: 1234)
        for _ in 0..<40 {
            let space = randomSpace(&rng, blocks: 5)
            let frontier = PlanningFrontier(space: space)
            let planner = Planner(space: space)
            for _ in 0..<25 {
                let device = randomDevice(&rng, space: space, edge: false)
                let full = planner.plan(device)
                let hit = frontier.lookup(device)
                #expect(full.feasible == (hit != nil))
                if let hit {
                    #expect(abs((space.baseAccuracy - hit.point.drop) - full.predicted.accuracy) < 1e-9)
                }
            }
        }
    }

    @Test func neighbourFirstReplanEqualsFullSearch() {
        var rng = SplitMix64(state: 555)
        var saved = 0, total = 0
        for _ in 0..<150 {
            let space = randomSpace(&rng, blocks: 5)
            let planner = Planner(space: space)
            var device = randomDevice(&rng, space: space, edge: true)
            let previous = planner.plan(device)
            device.edge!.bandwidthMbps *= Double.random(in: 0.5...1.5, using: &rng)
            let full = planner.plan(device)
            let (re, evaluated) = planner.replan(device, previous: previous)
            #expect(re.feasible == full.feasible)
            if full.feasible {
                #expect(abs(re.predicted.accuracy - full.predicted.accuracy) < 1e-12)
                #expect(abs(re.predicted.latencyMs - full.predicted.latencyMs) < 1e-9)
            }
            saved += 6 - evaluated
            total += 6
        }
        #expect(saved > 0, "the neighbour search never skipped a split")
    }

    @Test func fleetPlanningMatchesOneByOne() {
        var rng = SplitMix64(state: 77)
        let space = randomSpace(&rng, blocks: 5)
        let frontier = PlanningFrontier(space: space)
        let devices = (0..<20_000).map { _ in randomDevice(&rng, space: space, edge: false) }
        let fleet = frontier.planFleet(devices)
        for i in stride(from: 0, to: devices.count, by: 97) {
            #expect(fleet[i] == Int32(frontier.lookup(devices[i])?.index ?? -1))
        }
    }
}
