import ArgumentParser
import Foundation
import Learning
import Planner

struct BenchPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Speed of planning: frontier lookup, full dynamic program, brute force, neighbour-first re-partition, a whole fleet.",
        discussion: """
            Builds a synthetic 5-block space with 5 variants per block (3,125 combinations) shaped like the
            5-block ResNet (per-block latency and activations), then, in one run: a single re-plan by frontier
            lookup (p50/p99 over many random device contexts), the full exact planner, brute force over all
            combinations for the same decisions, the GADS-style neighbour-first re-partition against the full
            split search, and the time to plan a synthetic fleet of --fleet devices on all cores.
            Build in release mode first: swift build -c release --product fleetadapt
            """)

    @Option(help: "Devices in the fleet re-plan.")
    var fleet: Int = 1_000_000

    @Option(help: "Random device contexts for the single re-plan figures.")
    var samples: Int = 100_000

    func run() throws {
        var rng = SeededRandom(seed: 2026)
        let space = Self.space(&rng)
        let start = ContinuousClock.now
        let frontier = PlanningFrontier(space: space)
        let build = ContinuousClock.now - start
        let planner = Planner(space: space)
        print("space: \(space.blocks.count) blocks × \(space.blocks[0].count) variants = \(space.combinationCount) combinations; frontier of \(frontier.points.count) points built in \(String(format: "%.2f", build.ms)) ms")

        let devices = (0..<samples).map { _ in Self.device(&rng, edge: false) }
        var lookups: [Double] = []
        lookups.reserveCapacity(samples)
        var hits = 0
        for d in devices {
            let t = ContinuousClock.now
            if frontier.lookup(d) != nil { hits += 1 }
            lookups.append((ContinuousClock.now - t).ms * 1000)
        }
        lookups.sort()
        let n = min(2_000, samples)
        var dp: [Double] = []
        var brute: [Double] = []
        for d in devices.prefix(n) {
            var t = ContinuousClock.now
            _ = planner.plan(d)
            dp.append((ContinuousClock.now - t).ms * 1000)
            t = ContinuousClock.now
            _ = Self.bruteForce(space, d)
            brute.append((ContinuousClock.now - t).ms * 1000)
        }
        dp.sort()
        brute.sort()
        let p = { (a: [Double], q: Double) in a[min(a.count - 1, Int(Double(a.count) * q))] }
        print(String(format: "re-plan by frontier lookup: p50 %.2f µs, p99 %.2f µs (%d contexts, %d feasible)", p(lookups, 0.5), p(lookups, 0.99), samples, hits))
        print(String(format: "full exact planner (DP):    p50 %.1f µs, p99 %.1f µs", p(dp, 0.5), p(dp, 0.99)))
        print(String(format: "brute force (3,125 combos): p50 %.1f µs, p99 %.1f µs", p(brute, 0.5), p(brute, 0.99)))
        print(String(format: "ratios (p50): brute force / lookup = %.0f×, DP / lookup = %.0f×; GADS reports 0.1 ms per re-partition",
                     p(brute, 0.5) / p(lookups, 0.5), p(dp, 0.5) / p(lookups, 0.5)))

        // Re-partition after a bandwidth change: neighbours of the previous split first.
        var full: [Double] = []
        var neighbour: [Double] = []
        var evaluated = 0
        for _ in 0..<500 {
            var d = Self.device(&rng, edge: true)
            let previous = planner.plan(d)
            d.edge!.bandwidthMbps *= Double.random(in: 0.7...1.3, using: &rng)
            var t = ContinuousClock.now
            _ = planner.plan(d)
            full.append((ContinuousClock.now - t).ms * 1000)
            t = ContinuousClock.now
            let r = planner.replan(d, previous: previous)
            neighbour.append((ContinuousClock.now - t).ms * 1000)
            evaluated += r.splitsEvaluated
        }
        full.sort()
        neighbour.sort()
        print(String(format: "re-partition with edge link: full search p50 %.1f µs, neighbour-first p50 %.1f µs (%.2f×), %.1f of 6 splits evaluated on average",
                     p(full, 0.5), p(neighbour, 0.5), p(full, 0.5) / p(neighbour, 0.5), Double(evaluated) / 500))

        let fleetDevices = (0..<fleet).map { _ in Self.device(&rng, edge: false) }
        let t = ContinuousClock.now
        let plans = frontier.planFleet(fleetDevices)
        let fleetTime = ContinuousClock.now - t
        let planned = plans.filter { $0 >= 0 }.count
        print(String(format: "fleet re-plan: %d devices in %.0f ms on %d cores (%.1f M devices/s), %d feasible",
                     fleet, fleetTime.ms, ProcessInfo.processInfo.activeProcessorCount, Double(fleet) / fleetTime.ms / 1000, planned))
    }

    /// Shaped like the 5-block ResNet on 28×28: stride-2 blocks, widths 16/32/64; variants from pruning.
    static func space(_ rng: inout SeededRandom) -> PlanningSpace {
        let blocks: [(ms: Double, act: Int, out: Int)] = [(0.9, 50_176 * 4, 12_544 * 4), (0.6, 37_632 * 4, 6_272 * 4), (0.7, 25_088 * 4, 6_272 * 4), (0.5, 18_816 * 4, 3_136 * 4), (0.6, 12_544 * 4, 3_136 * 4)]
        let keep: [Double] = [1, 0.75, 0.5, 0.25, 0.125]
        var all: [[VariantProfile]] = []
        for (i, b) in blocks.enumerated() {
            all.append(keep.enumerated().map { v, k in
                VariantProfile(id: "v\(v)", referenceLatencyMs: b.ms * (0.15 + 0.85 * k), flops: 1e7 * k, paramBytes: Int(Double(20_000 * (i + 1)) * k),
                               peakActivationBytes: Int(Double(b.act) * (0.5 + 0.5 * k)), outputBytes: b.out,
                               accuracyDrop: v == 0 ? 0 : (1 - k) * Double.random(in: 0.01...0.06, using: &rng))
            })
        }
        return PlanningSpace(blockNames: (1...5).map { "b\($0)" }, blocks: all, baseAccuracy: 0.91, referenceGFLOPS: 20,
                             stem: FixedCost(referenceLatencyMs: 0.1, paramBytes: 640, peakActivationBytes: 50_176 * 4, stemOutputBytes: 12_544 * 4),
                             head: FixedCost(referenceLatencyMs: 0.02, paramBytes: 2_600, peakActivationBytes: 256, stemOutputBytes: 0))
    }

    static func device(_ rng: inout SeededRandom, edge: Bool) -> DeviceProfile {
        DeviceProfile(gflops: Double.random(in: 2...60, using: &rng), powerWatts: Double.random(in: 2...15, using: &rng),
                      latencyBudgetMs: Double.random(in: 1...8, using: &rng), memoryBudgetMB: Double.random(in: 0.3...2, using: &rng),
                      energyBudgetMJ: Bool.random(using: &rng) ? Double.random(in: 5...60, using: &rng) : nil,
                      batteryPct: Double.random(in: 0...100, using: &rng),
                      edge: edge ? EdgeLink(bandwidthMbps: Double.random(in: 1...400, using: &rng), rttMs: Double.random(in: 1...20, using: &rng), serverGFLOPS: 200) : nil)
    }

    /// Every combination, costed directly: the baseline the planner must beat.
    static func bruteForce(_ s: PlanningSpace, _ d: DeviceProfile) -> Double {
        let scale = s.referenceGFLOPS / d.gflops
        let cap = min(d.latencyBudgetMs, d.effectiveEnergyBudgetMJ.map { $0 / d.powerWatts } ?? .infinity)
        let memoryCap = Int(d.memoryBudgetMB * 1_048_576)
        var best = -1.0
        var idx = [Int](repeating: 0, count: s.blocks.count)
        while true {
            var lat = (s.stem.referenceLatencyMs + s.head.referenceLatencyMs) * scale
            var params = s.stem.paramBytes + s.head.paramBytes
            var act = max(s.stem.peakActivationBytes, s.head.peakActivationBytes)
            var acc = s.baseAccuracy
            for (i, v) in idx.enumerated() {
                let p = s.blocks[i][v]
                lat += p.referenceLatencyMs * scale
                params += p.paramBytes
                act = max(act, p.peakActivationBytes)
                acc -= p.accuracyDrop
            }
            if lat <= cap && params + act <= memoryCap && acc > best { best = acc }
            var i = 0
            while i < idx.count {
                idx[i] += 1
                if idx[i] < s.blocks[i].count { break }
                idx[i] = 0
                i += 1
            }
            if i == idx.count { break }
        }
        return best
    }
}
