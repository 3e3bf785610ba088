@testable import Planner

/// SplitMix64: tiny, seeded, identical on every platform, so a failing case can be replayed.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SeededRNG {
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { Double.random(in: lo...hi, using: &self) }
    mutating func int(_ lo: Int, _ hi: Int) -> Int { Int.random(in: lo...hi, using: &self) }
    mutating func chance(_ p: Double) -> Bool { uniform(0, 1) < p }
    /// Sometimes snapped to a coarse grid so that exact ties between combinations actually happen.
    mutating func value(_ lo: Double, _ hi: Double, grid: Double) -> Double {
        let x = uniform(lo, hi)
        return chance(0.4) ? (x / grid).rounded() * grid : x
    }
}

enum Fixtures {
    static func randomSpace(_ rng: inout SeededRNG, maxBlocks: Int = 5, maxVariants: Int = 5) -> PlanningSpace {
        let n = rng.int(1, maxBlocks)
        let blocks = (0..<n).map { b in
            BlockOption(name: "block\(b)", variants: (0..<rng.int(1, maxVariants)).map { v in
                VariantProfile(id: "v\(v)", referenceLatencyMs: rng.value(0.05, 3, grid: 0.25),
                               flops: rng.uniform(1e5, 1e7), paramBytes: rng.int(0, 40) * 1024,
                               peakActivationBytes: rng.int(1, 30) * 4096, outputBytes: rng.int(0, 8) * 8192,
                               accuracyDrop: v == 0 ? 0 : rng.value(0, 0.05, grid: 0.005))
            })
        }
        return PlanningSpace(blocks: blocks, baseAccuracy: 0.9, referenceGFLOPS: 10,
                             stem: FixedCost(referenceLatencyMs: rng.uniform(0, 0.5), paramBytes: 2048,
                                             peakActivationBytes: rng.int(1, 30) * 4096),
                             head: FixedCost(referenceLatencyMs: rng.uniform(0, 0.3), paramBytes: 4096,
                                             peakActivationBytes: 1024),
                             inputBytes: rng.int(1, 16) * 8192)
    }

    /// A device whose budgets fall inside the space's cost range, so that they bind in interesting ways.
    static func randomDevice(_ rng: inout SeededRNG, space: PlanningSpace, edge: Bool, measured: Bool? = nil,
                             energy: Bool? = nil) -> DeviceProfile {
        let gflops = rng.uniform(1, 40)
        let scale = space.referenceGFLOPS / gflops
        let minLat = (space.stem.referenceLatencyMs + space.head.referenceLatencyMs
            + space.blocks.reduce(0) { $0 + $1.variants.map(\.referenceLatencyMs).min()! }) * scale
        let maxLat = (space.stem.referenceLatencyMs + space.head.referenceLatencyMs
            + space.blocks.reduce(0) { $0 + $1.variants.map(\.referenceLatencyMs).max()! }) * scale
        let maxParams = space.blocks.reduce(0) { $0 + $1.variants.map(\.paramBytes).max()! }
        let latency = rng.uniform(minLat * 0.8, maxLat * 1.1)
        let memory = Double(rng.int(0, maxParams + 200_000)) / DeviceProfile.bytesPerMB
        let classes = ["jetson-tx2", "raspberry-pi-4", "phone", "x86-edge", "unknown-board"]
        var device = DeviceProfile(gflops: gflops, hardwareClass: classes[rng.int(0, classes.count - 1)],
                                   latencyBudgetMs: latency, memoryBudgetMB: memory)
        if energy ?? rng.chance(0.5) {
            device.energyBudgetMJ = rng.uniform(0.2, 1.2) * maxLat * device.powerWatts
            if rng.chance(0.3) { device.batteryPct = rng.uniform(0, 100) }
        }
        if measured ?? rng.chance(0.3) {
            device.measuredLatencyMs = space.blocks.map { $0.variants.map { $0.referenceLatencyMs * scale * rng.uniform(0.7, 1.4) } }
        }
        if edge {
            device.edge = EdgeLink(bandwidthMbps: rng.chance(0.1) ? 0 : rng.uniform(1, 400), rttMs: rng.uniform(0, 3),
                                   serverGFLOPS: rng.uniform(20, 400), txPowerWatts: rng.uniform(0.5, 2))
        }
        if rng.chance(0.3) { device.objective = .accuracyThenEnergy }
        return device
    }

    /// Costs of a plan recomputed from the space with the documented rules, independently of the planner's code.
    static func costs(of plan: Plan, space: PlanningSpace, device: DeviceProfile)
        -> (latency: Double, memoryMB: Double, energy: Double, accuracy: Double) {
        let scale = space.referenceGFLOPS / device.gflops
        func deviceMs(_ b: Int) -> Double {
            device.measuredLatencyMs?[b][plan.variants[b]]
                ?? space.blocks[b].variants[plan.variants[b]].referenceLatencyMs * scale
        }
        let n = space.blocks.count
        let last = plan.partition?.splitAfterBlock ?? (n - 1)
        var dev = space.stem.referenceLatencyMs * scale
        var params = space.stem.paramBytes, act = space.stem.peakActivationBytes
        for b in stride(from: 0, through: last, by: 1) {
            dev += deviceMs(b)
            params += space.blocks[b].variants[plan.variants[b]].paramBytes
            act = max(act, space.blocks[b].variants[plan.variants[b]].peakActivationBytes)
        }
        let drop = (0..<n).reduce(0.0) { $0 + space.blocks[$1].variants[plan.variants[$1]].accuracyDrop }
        guard let link = device.edge, plan.partition != nil else {
            dev += space.head.referenceLatencyMs * scale
            params += space.head.paramBytes
            act = max(act, space.head.peakActivationBytes)
            return (dev, Double(params + act) / DeviceProfile.bytesPerMB, dev * device.powerWatts,
                    space.accuracy(drop: drop))
        }
        let bytes = last < 0 ? space.inputBytes : space.blocks[last].variants[plan.variants[last]].outputBytes
        let tx = Double(bytes) * 8 / (link.bandwidthMbps * 1e6) * 1000
        var server = space.head.referenceLatencyMs
        for b in (last + 1)..<n { server += space.blocks[b].variants[plan.variants[b]].referenceLatencyMs }
        server *= space.referenceGFLOPS / link.serverGFLOPS
        return (dev + tx + link.rttMs + server, Double(params + act) / DeviceProfile.bytesPerMB,
                dev * device.powerWatts + tx * link.txPowerWatts, space.accuracy(drop: drop))
    }

    /// Planner latencies are resolved to 1 ns per term, hence the absolute slack on top of the relative one.
    static func close(_ a: Double, _ b: Double, _ tol: Double = 1e-9, slack: Double = 1e-4) -> Bool {
        abs(a - b) <= slack + tol * max(1, abs(a), abs(b))
    }

    /// A realistic 5-block space, 5 variants each (pruned 0/25/50/75 %, or skipped).
    static func fiveByFive() -> PlanningSpace {
        let blockMs = [1.2, 0.9, 0.8, 0.7, 0.6]
        let out = [16 * 28 * 28 * 4, 32 * 14 * 14 * 4, 32 * 14 * 14 * 4, 64 * 7 * 7 * 4, 64 * 7 * 7 * 4]
        let params = [9_472, 37_888, 74_240, 148_480, 295_424]
        let ids = ["s0", "s25", "s50", "s75", "skip"]
        let keep = [1.0, 0.75, 0.5, 0.25, 0.02]
        let drops = [0.0, 0.004, 0.012, 0.03, 0.06]
        let blocks = (0..<5).map { b in
            BlockOption(name: "block\(b)", variants: (0..<5).map { v in
                VariantProfile(id: ids[v], referenceLatencyMs: blockMs[b] * keep[v], flops: 2e7 * keep[v],
                               paramBytes: Int(Double(params[b]) * keep[v]), peakActivationBytes: out[b] * 2,
                               outputBytes: out[b], accuracyDrop: drops[v] * Double(b + 1) / 3)
            })
        }
        return PlanningSpace(blocks: blocks, baseAccuracy: 0.91, referenceGFLOPS: 20,
                             stem: FixedCost(referenceLatencyMs: 0.3, paramBytes: 1_792, peakActivationBytes: 50_176),
                             head: FixedCost(referenceLatencyMs: 0.05, paramBytes: 2_600, peakActivationBytes: 256),
                             inputBytes: 16 * 28 * 28 * 4)
    }
}
