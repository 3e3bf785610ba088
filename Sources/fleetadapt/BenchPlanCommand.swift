import ArgumentParser
import Learning
import Planner

/// `fleetadapt bench plan`: the planner's speed and exactness on a synthetic 5×5 space, measured in one run so the
/// ratios compare like with like (same machine, same load).
struct BenchPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Benchmark the planner: frontier lookup vs brute force, neighbour-first re-partition, fleet re-plan.")

    @Option(help: "Number of random device contexts timed one by one for the single re-plan latency.")
    var contexts: Int = 100_000

    @Option(help: "Number of those contexts also decided by brute force (slow: every combination and cut).")
    var bruteForceContexts: Int = 2_000

    @Option(help: "Number of drifting edge-linked contexts for the neighbour-first (GADS) vs full split search.")
    var gadsContexts: Int = 20_000

    @Option(help: "Number of per-device DP builds (measured latencies) timed for the full DP figure.")
    var dpBuilds: Int = 2_000

    @Option(help: "Number of devices in the synthetic fleet re-planned in one call on all cores.")
    var fleet: Int = 1_000_000

    @Option(help: "Share of devices, between 0 and 1, that have an edge link (and so a partition search).")
    var edgeFraction: Double = 0.3

    @Option(help: "Seed of the generator of device contexts, so runs can be repeated.")
    var seed: UInt64 = 42

    @Option(help: "Context changes timed end to end through a real coordinator (PUT /v1/agent/context → new config readable); 0 skips.")
    var endToEndChanges: Int = 200

    @Option(help: "Devices inserted into that coordinator and re-planned as a model publish does (0 skips).")
    var serviceFleet: Int = 100_000

    func validate() throws {
        guard contexts > 0, bruteForceContexts > 0, gadsContexts > 0, dpBuilds > 0, fleet > 0 else {
            throw ValidationError("counts must be positive")
        }
        guard (0...1).contains(edgeFraction) else { throw ValidationError("--edge-fraction must be between 0 and 1") }
    }

    func run() throws {
        let space = BenchSpace.resnet5x5()
        var rng = BenchRNG(seed: seed)
        print("planner bench: \(space.blocks.count) blocks × \(space.blocks[0].variants.count) variants = "
              + "\(Int(space.combinationCount)) combinations (\(Int(space.combinationCount) * (space.blocks.count + 1)) with cuts)")

        // Frontier build (the DP over the chain, reference latencies).
        var frontier = try PlanningFrontier(space: space)
        let buildNs = Stopwatch.mean(repeats: 200) { frontier = try! PlanningFrontier(space: space) }
        print("frontier build (Pareto DP, reference units): \(fmt(buildNs / 1000)) µs; "
              + "on-device frontier keeps \(frontier.frontierSize) of \(Int(space.combinationCount)) combinations")

        // Single re-plan latency, frontier lookup.
        let local = (0..<contexts).map { _ in BenchDevices.random(&rng, space: space, edge: false) }
        let linked = (0..<contexts).map { _ in BenchDevices.random(&rng, space: space, edge: true) }
        var checksum = 0.0
        let localNs = Stopwatch.each(local) { checksum += try! frontier.summary(for: $0).accuracy }
        let linkedNs = Stopwatch.each(linked) { checksum += try! frontier.summary(for: $0).accuracy }
        print("re-plan, frontier lookup, on-device contexts (\(contexts)): p50 \(fmt(localNs.p50 / 1000)) µs, "
              + "p99 \(fmt(localNs.p99 / 1000)) µs, mean \(fmt(localNs.mean / 1000)) µs")
        print("re-plan, frontier + exact split search, edge-linked contexts (\(contexts)): p50 "
              + "\(fmt(linkedNs.p50 / 1000)) µs, p99 \(fmt(linkedNs.p99 / 1000)) µs, mean \(fmt(linkedNs.mean / 1000)) µs")

        // The same decisions by brute force.
        let sample = Array(local.prefix(bruteForceContexts / 2) + linked.prefix(bruteForceContexts - bruteForceContexts / 2))
        var mismatches = 0
        let bruteNs = Stopwatch.each(sample) {
            checksum += try! Planner.bruteForceSummary(space: space, device: $0, frontier: frontier).accuracy
        }
        let fastNs = Stopwatch.each(sample) { checksum += try! frontier.summary(for: $0).accuracy }
        for d in sample where try frontier.summary(for: d)
            != (try Planner.bruteForceSummary(space: space, device: d, frontier: frontier)) { mismatches += 1 }
        print("brute force, same \(sample.count) decisions: mean \(fmt(bruteNs.mean / 1000)) µs vs frontier "
              + "\(fmt(fastNs.mean / 1000)) µs → ×\(fmt(bruteNs.mean / fastNs.mean, 0)) faster; mismatches: \(mismatches)")

        // Full per-device DP (device sent measured latencies: no shared frontier applies), with explanation.
        let measured = (0..<dpBuilds).map { _ in BenchDevices.random(&rng, space: space, edge: rng.chance(0.5), measured: true) }
        let dpNs = Stopwatch.each(measured) { checksum += try! Planner.plan(space: space, device: $0).predicted.accuracy }
        let dpSummaryNs = Stopwatch.each(measured) { checksum += try! frontier.summary(for: $0).accuracy }
        print("full DP per device (measured latencies, \(dpBuilds)): plan with explanation mean \(fmt(dpNs.mean / 1000)) µs "
              + "(p50 \(fmt(dpNs.p50 / 1000))), decision only mean \(fmt(dpSummaryNs.mean / 1000)) µs")

        // GADS: context drift, neighbour-first vs every cut.
        var previous: [Int?] = [], drifted: [DeviceProfile] = []
        for _ in 0..<gadsContexts {
            // Weak boards beside a strong edge server on a good link: where cutting the model pays off.
            var d = BenchDevices.random(&rng, space: space, edge: true)
            d.gflops = rng.uniform(0.5, 3)
            d.latencyBudgetMs = rng.uniform(1, 40)
            d.edge = EdgeLink(bandwidthMbps: rng.skewedUniform(20, 1000), rttMs: rng.uniform(0.2, 3),
                              serverGFLOPS: rng.uniform(100, 500))
            previous.append(try frontier.summary(for: d).splitAfterBlock)
            d.edge!.bandwidthMbps *= rng.uniform(0.5, 2)
            d.latencyBudgetMs *= rng.uniform(0.8, 1.25)
            if rng.chance(0.3) { d.batteryPct = rng.uniform(1, 100) }
            drifted.append(d)
        }
        var gadsMismatch = 0
        let indices = Array(0..<gadsContexts)
        let gadsNs = Stopwatch.each(indices) {
            checksum += try! frontier.replanSummary(previousSplit: previous[$0], newContext: drifted[$0]).latencyMs
        }
        let fullNs = Stopwatch.each(indices) { checksum += try! frontier.exhaustiveSplitSummary(for: drifted[$0]).latencyMs }
        let boundedNs = Stopwatch.each(indices) { checksum += try! frontier.summary(for: drifted[$0]).latencyMs }
        var moved = 0, partitioned = 0
        for i in indices {
            let a = try frontier.replanSummary(previousSplit: previous[i], newContext: drifted[i])
            if a != (try frontier.exhaustiveSplitSummary(for: drifted[i])) { gadsMismatch += 1 }
            if a.splitAfterBlock != previous[i] { moved += 1 }
            if a.splitAfterBlock != nil { partitioned += 1 }
        }
        print("partition re-plan after drift (\(gadsContexts) contexts, \(partitioned) partitioned, cut moved in \(moved)):")
        print("  neighbour-first (GADS): p50 \(fmt(gadsNs.p50 / 1000)) µs, mean \(fmt(gadsNs.mean / 1000)) µs")
        print("  every cut × exact selection: p50 \(fmt(fullNs.p50 / 1000)) µs, mean \(fmt(fullNs.mean / 1000)) µs "
              + "→ GADS ×\(fmt(fullNs.mean / gadsNs.mean)) faster (mean), ×\(fmt(fullNs.p50 / gadsNs.p50)) (p50); mismatches: \(gadsMismatch)")
        print("  bounded search from on-device (no previous plan): p50 \(fmt(boundedNs.p50 / 1000)) µs, "
              + "mean \(fmt(boundedNs.mean / 1000)) µs")

        // Fleet re-plan on all cores.
        var fleetRNG = BenchRNG(seed: seed &+ 1)
        let devices = (0..<fleet).map { _ in
            BenchDevices.random(&fleetRNG, space: space, edge: fleetRNG.chance(edgeFraction))
        }
        let clock = ContinuousClock()
        let start = clock.now
        let plans = Planner.planFleet(devices, frontier: frontier)
        let seconds = Stopwatch.seconds(clock.now - start)
        let feasible = plans.reduce(0) { $0 + (($1?.feasible ?? false) ? 1 : 0) }
        let split = plans.reduce(0) { $0 + ($1?.splitAfterBlock != nil ? 1 : 0) }
        print("fleet re-plan: \(fleet) devices (\(fmt(edgeFraction * 100, 0))% edge-linked) in \(fmt(seconds * 1000, 1)) ms "
              + "→ \(fmt(Double(fleet) / seconds / 1e6, 2)) M devices/s; feasible \(feasible), partitioned \(split)")
        print("checksum \(fmt(checksum, 3))")
        if endToEndChanges > 0 { try BenchPlanEndToEnd.run(space: space, changes: endToEndChanges, fleetDevices: serviceFleet) }
    }
}

/// Fixed-point text without Foundation.
private func fmt(_ x: Double, _ digits: Int = 2) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let n = Int((x * scale).rounded())
    let whole = n / Int(scale), frac = abs(n % Int(scale))
    guard digits > 0 else { return "\(whole)" }
    let f = String(frac)
    return "\(n < 0 && whole == 0 ? "-" : "")\(whole).\(String(repeating: "0", count: digits - f.count))\(f)"
}

/// Timing helpers over `ContinuousClock`; each sample times one call, so clock overhead (~20–30 ns) is included.
private enum Stopwatch {
    struct Stats { var p50: Double; var p99: Double; var mean: Double }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    static func each<T>(_ items: [T], _ body: (T) -> Void) -> Stats {
        let clock = ContinuousClock()
        var ns = [Double](repeating: 0, count: items.count)
        for (i, item) in items.enumerated() {
            let t0 = clock.now
            body(item)
            ns[i] = seconds(clock.now - t0) * 1e9
        }
        let total = ns.reduce(0, +)
        ns.sort()
        return Stats(p50: ns[ns.count / 2], p99: ns[min(ns.count - 1, ns.count * 99 / 100)], mean: total / Double(ns.count))
    }

    static func mean(repeats: Int, _ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        let t0 = clock.now
        for _ in 0..<repeats { body() }
        return seconds(clock.now - t0) * 1e9 / Double(repeats)
    }
}

/// Learning's SplitMix64, seeded, so the synthetic contexts are the same on every run.
private struct BenchRNG: RandomNumberGenerator {
    var source: SeededRandom
    init(seed: UInt64) { source = SeededRandom(seed: seed) }
    mutating func next() -> UInt64 { source.next() }

    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { Double.random(in: lo...hi, using: &self) }
    mutating func skewedUniform(_ lo: Double, _ hi: Double) -> Double {
        var l = lo, h = hi
        l = l.squareRoot(); h = h.squareRoot()  // cheap skew toward small values without Foundation's log/exp
        let r = uniform(l, h)
        return r * r
    }
    mutating func chance(_ p: Double) -> Bool { uniform(0, 1) < p }
}

/// The 5-block ResNet of the learning side (16/32/64 channels, 1×28×28 input), as a 5×5 planning space.
///
/// FLOPs from its convolutions; reference latency = FLOPs at 10 GFLOP/s (batch 1 on this kind of CPU, ≈ 3.4 ms in
/// total, close to PyTorch's 2.3–3 ms); variants keep 100/75/50/25 % of the inner filters (LegoDNN L1 pruning) or skip
/// the block (identity, or a 1×1 projection where the shape changes). Drops are typical LegoDNN-style estimates.
private enum BenchSpace {
    static func resnet5x5() -> PlanningSpace {
        let flops = [7_225_344.0, 5_419_008, 7_225_344, 5_419_008, 7_225_344]
        let params = [4_608, 14_336, 18_432, 57_344, 73_728]
        let out = [50_176, 25_088, 25_088, 12_544, 12_544]
        let skipFlops = [0.0, 200_704, 0, 200_704, 0]
        let skipParams = [0, 512, 0, 2_048, 0]
        let drops: [[Double]] = [
            [0, 0.003, 0.009, 0.024, 0.041],
            [0, 0.004, 0.012, 0.031, 0.052],
            [0, 0.002, 0.006, 0.015, 0.022],
            [0, 0.005, 0.014, 0.036, 0.067],
            [0, 0.003, 0.010, 0.027, 0.048],
        ]
        let ids = ["s0", "s25", "s50", "s75", "skip"]
        let keep = [1.0, 0.75, 0.5, 0.25]
        let referenceGFLOPS = 10.0
        let blocks = (0..<5).map { b in
            BlockOption(name: "block\(b + 1)", variants: (0..<5).map { v in
                let f = v < 4 ? flops[b] * keep[v] : skipFlops[b]
                let p = v < 4 ? Int(Double(params[b]) * keep[v]) : skipParams[b]
                return VariantProfile(id: ids[v], referenceLatencyMs: f / (referenceGFLOPS * 1e6) + 0.01, flops: f,
                                      paramBytes: p * 4, peakActivationBytes: v < 4 ? 3 * out[b] : 2 * out[b],
                                      outputBytes: out[b], accuracyDrop: drops[b][v])
            })
        }
        return PlanningSpace(blocks: blocks, baseAccuracy: 0.912, referenceGFLOPS: referenceGFLOPS,
                             stem: FixedCost(referenceLatencyMs: 0.03, flops: 225_792, paramBytes: 160 * 4,
                                             peakActivationBytes: 3_136 + 50_176),
                             head: FixedCost(referenceLatencyMs: 0.01, flops: 1_280, paramBytes: 650 * 4,
                                             peakActivationBytes: 256),
                             inputBytes: 50_176)
    }
}

/// Varied device contexts: boards from microcontroller-class to x86 edge boxes, budgets around what they can do.
private enum BenchDevices {
    static let classes = ["mcu", "raspberry-pi-4", "phone", "jetson-nano", "jetson-tx2", "jetson-xavier-nx", "x86-edge"]

    static func random(_ rng: inout BenchRNG, space: PlanningSpace, edge: Bool, measured: Bool = false) -> DeviceProfile {
        let gflops = rng.skewedUniform(0.5, 50)
        let scale = space.referenceGFLOPS / gflops
        let full = (space.stem.referenceLatencyMs + space.head.referenceLatencyMs
            + space.blocks.reduce(0) { $0 + $1.variants[0].referenceLatencyMs }) * scale
        var d = DeviceProfile(gflops: gflops, hardwareClass: classes[Int(rng.next() % UInt64(classes.count))],
                              latencyBudgetMs: full * rng.uniform(0.25, 1.3), memoryBudgetMB: rng.uniform(0.3, 2))
        if rng.chance(0.5) {
            d.energyBudgetMJ = full * d.powerWatts * rng.uniform(0.3, 1.5)
            d.batteryPct = rng.uniform(1, 100)
        }
        if edge {
            d.edge = EdgeLink(bandwidthMbps: rng.skewedUniform(1, 500), rttMs: rng.uniform(0.5, 20),
                              serverGFLOPS: rng.uniform(50, 500))
        }
        if measured {
            d.measuredLatencyMs = space.blocks.map { $0.variants.map { $0.referenceLatencyMs * scale * rng.uniform(0.8, 1.3) } }
        }
        if rng.chance(0.2) { d.objective = .accuracyThenEnergy }
        return d
    }
}
