/// The searches over a frontier: best feasible candidate (on-device lookup, per-split evaluation, neighbour-first
/// GADS order with exact bounds) and closest candidates for infeasible budgets and explanations.
extension PlanningFrontier {
    func context(_ device: DeviceProfile) -> DeviceContext {
        DeviceContext(device: device, space: space, deviceUnitsAreReference: usesReferenceLatencies)
    }

    /// Best whole-chain plan on the device: pick the memory level, then binary-search its latency staircase.
    func bestOnDevice(_ ctx: DeviceContext) -> Candidate? {
        let levels = memLevels
        guard let j = lastTrue(levels.count, { Double(levels[$0]) <= ctx.memoryBudgetBytes }) else { return nil }
        let start = levelStart[j], end = levelStart[j + 1]
        return levelStairs.withUnsafeBufferPointer { stairs -> Candidate? in
            let a = ctx.deviceScale, power = ctx.power, lb = ctx.latencyBudget, eb = ctx.energyBudget
            guard let i = lastTrue(end - start, {
                let d = a * ms(stairs[start + $0].lat)
                return d <= lb && power * d <= eb
            }) else { return nil }
            return makeOnDeviceCandidate(stairs[start + i], ctx)
        }
    }

    /// Exact best plan with a cut after block k, improving `incumbent` in place.
    ///
    /// Prefixes come by ascending drop, so once even the most accurate suffix cannot reach the incumbent's accuracy,
    /// no later prefix can either.
    /// With `prune` false every prefix is costed (the plain "every cut × exact selection" baseline).
    func evaluateSplit(_ k: Int, _ ctx: DeviceContext, _ link: EdgeLink, _ incumbent: inout Candidate?,
                       prune: Bool = true) {
        let suf = suffixes[k + 1]
        guard let sufMinDrop = suf.last?.drop else { return }
        let a = ctx.deviceScale, b = ctx.serverScale, lb = ctx.latencyBudget
        let serverMin = b * ms(suf[0].lat)
        prefixes[k + 1].withUnsafeBufferPointer { pre in
            suf.withUnsafeBufferPointer { s in
                for p in pre {
                    if prune, let c = incumbent, p.drop + sufMinDrop > c.drop { break }
                    if Double(p.mem) > ctx.memoryBudgetBytes { continue }
                    let devMs = a * ms(p.lat)
                    let txMs = link.transmitMs(bytes: p.bytes)
                    let energy = ctx.power * devMs + link.txPowerWatts * txMs
                    if energy > ctx.energyBudget { continue }
                    let base = devMs + (txMs + link.rttMs)
                    if base + serverMin > lb { continue }
                    guard let j = lastTrue(s.count, { base + b * ms(s[$0].lat) <= lb }) else { continue }
                    let cand = makePartitionCandidate(p, s[j], split: k, ctx, link)
                    if let c = incumbent, !cand.precedes(c, ctx.objective) { continue }
                    incumbent = cand
                }
            }
        }
    }

    /// True when no plan cut after block k can precede `incumbent`: a lower bound on its drop from relaxations
    /// (smallest tensor, fastest suffix, fastest prefix) already loses, or a budget cannot be met at all.
    func splitCannotBeat(_ k: Int, _ ctx: DeviceContext, _ link: EdgeLink, _ incumbent: Candidate) -> Bool {
        if Double(prefixMinMem[k + 1]) > ctx.memoryBudgetBytes { return true }
        let suf = suffixes[k + 1], ps = prefixStairs[k + 1]
        guard !suf.isEmpty, !ps.isEmpty else { return true }
        let a = ctx.deviceScale, b = ctx.serverScale, lb = ctx.latencyBudget
        let txMin = link.transmitMs(bytes: prefixMinBytes[k + 1])
        let tMin = txMin + link.rttMs
        let radioMin = link.txPowerWatts * txMin
        let serverMin = b * ms(suf[0].lat)
        guard let i = lastTrue(ps.count, {
            let d = a * ms(ps[$0].lat)
            return (d + tMin) + serverMin <= lb && ctx.power * d + radioMin <= ctx.energyBudget
        }) else { return true }
        let devMin = a * ms(ps[0].lat)
        guard let j = lastTrue(suf.count, { (devMin + tMin) + b * ms(suf[$0].lat) <= lb }) else { return true }
        return ps[i].drop + suf[j].drop > incumbent.drop
    }

    /// Best feasible candidate, or nil when none fits.
    ///
    /// - Parameters:
    ///   - previousSplit: GADS order: start at the previous cut (nil: on-device) and its neighbours, then widen,
    ///     skipping splits whose bound cannot beat the incumbent. Ignored when `exhaustive`.
    ///   - exhaustive: cost every prefix of every split, no pruning (the baseline the neighbour search is measured
    ///     against; same result).
    func searchBest(_ ctx: DeviceContext, previousSplit: Int?, exhaustive: Bool) -> Candidate? {
        var incumbent = bestOnDevice(ctx)
        guard let link = ctx.link else { return incumbent }
        let last = blockCount - 2  // splits are −1...last; position last + 1 stands for on-device
        if last < -1 { return incumbent }
        if exhaustive {
            for k in -1...last { evaluateSplit(k, ctx, link, &incumbent, prune: false) }
            return incumbent
        }
        let p = min(max(previousSplit ?? (last + 1), -1), last + 1)
        var k = p - 1
        while k <= p + 1 {
            if k >= -1 && k <= last { evaluateSplit(k, ctx, link, &incumbent) }
            k += 1
        }
        var d = 2
        while p - d >= -1 || p + d <= last {
            for k in stride(from: p - d, through: p + d, by: 2 * d) where k >= -1 && k <= last {
                if let c = incumbent, splitCannotBeat(k, ctx, link, c) { continue }
                evaluateSplit(k, ctx, link, &incumbent)
            }
            d += 1
        }
        return incumbent
    }

    /// The candidate with the smallest largest budget ratio among those with drop below `threshold`.
    func closest(_ ctx: DeviceContext, dropBelow threshold: Int64) -> (Candidate, Violation)? {
        var best: (Candidate, Violation)?
        for p in chain {
            if p.drop >= threshold { break }
            let c = makeOnDeviceCandidate(p, ctx)
            let item = (c, c.violation(ctx))
            if closer(item, than: best, ctx.objective) { best = item }
        }
        guard let link = ctx.link else { return best }
        for k in -1...(blockCount - 2) {
            let suf = suffixes[k + 1]
            guard let sufMinDrop = suf.last?.drop else { continue }
            for p in prefixes[k + 1] {
                if p.drop + sufMinDrop >= threshold { break }
                for s in suf where p.drop + s.drop < threshold {
                    let c = makePartitionCandidate(p, s, split: k, ctx, link)
                    let item = (c, c.violation(ctx))
                    if closer(item, than: best, ctx.objective) { best = item }
                }
            }
        }
        return best
    }

    /// Best candidate, else the closest one, optionally with the closest more accurate one for the explanation.
    func decide(_ ctx: DeviceContext, previousSplit: Int?, exhaustive: Bool, explain: Bool) -> Decision {
        var decision = Decision()
        if let best = searchBest(ctx, previousSplit: previousSplit, exhaustive: exhaustive) {
            decision.best = best
            if explain && best.drop > globalMinDrop {
                decision.moreAccurate = closest(ctx, dropBelow: best.drop)
            }
        } else {
            decision.closest = closest(ctx, dropBelow: .max)
        }
        return decision
    }

    func summary(of decision: Decision) -> PlanSummary {
        let feasible = decision.best != nil
        guard let c = decision.best ?? decision.closest?.0 else {
            // Unreachable for a valid space (the chain frontier is never empty), kept total for safety.
            return PlanSummary(code: 0, splitAfterBlock: nil, accuracy: .nan, latencyMs: .nan, memoryMB: .nan,
                               energyMJ: .nan, feasible: false, violated: nil)
        }
        return PlanSummary(code: c.code, splitAfterBlock: c.isOnDevice ? nil : c.split,
                           accuracy: space.accuracy(drop: Double(c.drop) / dropUnitsPerAccuracy),
                           latencyMs: c.latencyMs, memoryMB: Double(c.memBytes) / DeviceProfile.bytesPerMB,
                           energyMJ: c.energyMJ, feasible: feasible,
                           violated: feasible ? nil : decision.closest?.1.kind)
    }
}
