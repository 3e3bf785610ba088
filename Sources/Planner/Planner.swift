/// Chooses, for one device, a variant per block (and, with an edge server, a split point) that maximises
/// estimated accuracy under its latency, memory and energy budgets. Exact: a dynamic program over Pareto
/// frontiers of partial combinations (latency, device latency, parameter bytes, peak activation, accuracy drop),
/// pruned by dominance, verified against brute force in the tests.
public struct Planner: Sendable {
    public let space: PlanningSpace

    public init(space: PlanningSpace) {
        self.space = space
    }

    /// Chooses how latency ties between equally accurate plans are broken when partitioning.
    public enum Objective: String, Codable, Sendable { case latency, energy }

    /// The best plan on the device alone, or jointly with a split point when the device has an edge link.
    public func plan(_ device: DeviceProfile, objective: Objective = .latency) -> Plan {
        var best = evaluate(device, split: nil, objective: objective)
        if let edge = device.edge, edge.bandwidthMbps > 0 {
            for k in -1..<(space.blocks.count - 1) {
                let candidate = evaluate(device, split: k, objective: objective)
                if better(candidate, than: best, objective: objective) { best = candidate }
            }
        }
        return finish(best, device)
    }

    /// Re-plans after a context change, searching the previous split point's neighbours first (GADS) and the
    /// others only when a bound says they could still win. Returns the same plan as `plan`.
    public func replan(_ device: DeviceProfile, previous: Plan, objective: Objective = .latency) -> (plan: Plan, splitsEvaluated: Int) {
        guard let edge = device.edge, edge.bandwidthMbps > 0 else { return (plan(device, objective: objective), 1) }
        let n = space.blocks.count
        let previousSplit = previous.partition?.splitAfterBlock ?? (n - 1)
        var order = [previousSplit, previousSplit - 1, previousSplit + 1].filter { $0 >= -1 && $0 <= n - 1 }
        for k in -1...(n - 1) where !order.contains(k) { order.append(k) }
        var best: Candidate?
        var evaluated = 0
        let bestPossibleDrop = space.blocks.map { $0.map(\.accuracyDrop).min() ?? 0 }.reduce(0, +)
        for k in order {
            let split: Int? = k == n - 1 ? nil : k
            if let b = best, b.feasible {
                // Bound: no split can beat the best drop; with equal drops, skip when even the fastest
                // combination at this split is no faster than what we hold.
                if b.drop <= bestPossibleDrop + 1e-12, lowerBoundLatency(device, split: split) >= b.latency { continue }
            }
            let c = evaluate(device, split: split, objective: objective)
            evaluated += 1
            if best == nil || better(c, than: best!, objective: objective) { best = c }
        }
        return (finish(best!, device), evaluated)
    }

    // MARK: - Costs

    /// Device latency of a variant: measured when the device measured it, else scaled by compute speed.
    @inline(__always)
    func deviceLatency(_ device: DeviceProfile, _ block: Int, _ variant: Int) -> Double {
        if let m = device.measuredLatencyMs, block < m.count, variant < m[block].count { return m[block][variant] }
        return space.blocks[block][variant].referenceLatencyMs * space.referenceGFLOPS / device.gflops
    }

    @inline(__always)
    func scaled(_ referenceMs: Double, _ gflops: Double) -> Double { referenceMs * space.referenceGFLOPS / gflops }

    func lowerBoundLatency(_ device: DeviceProfile, split: Int?) -> Double {
        var t = scaled(space.stem.referenceLatencyMs, device.gflops)
        for i in space.blocks.indices {
            let onDevice = split.map { i <= $0 } ?? true
            t += space.blocks[i].indices.map { v in
                onDevice ? deviceLatency(device, i, v) : scaled(space.blocks[i][v].referenceLatencyMs, device.edge!.serverGFLOPS)
            }.min() ?? 0
        }
        if let split, let edge = device.edge {
            t += edge.transferMs(split < 0 ? space.stem.stemOutputBytes : space.blocks[split][0].outputBytes)
            t += scaled(space.head.referenceLatencyMs, edge.serverGFLOPS)
        } else {
            t += scaled(space.head.referenceLatencyMs, device.gflops)
        }
        return t
    }

    /// One partial or complete combination during the dynamic program.
    struct Candidate {
        var latency: Double        // end to end
        var deviceLatency: Double  // compute on the device (for energy)
        var params: Int            // on the device
        var activation: Int        // peak on the device
        var drop: Double
        var choice: [Int]
        var split: Int?
        var transferMs: Double = 0
        var edgeLatency: Double = 0
        var feasible = true
        var energy: Double = 0
        var memoryBytes: Int = 0
        var violation: Double = 0
    }

    /// The best combination for a fixed split (nil: all on the device).
    func evaluate(_ device: DeviceProfile, split: Int?, objective: Objective) -> Candidate {
        let n = space.blocks.count
        let edge = device.edge
        var fixedLatency = scaled(space.stem.referenceLatencyMs, device.gflops)
        var fixedDevice = fixedLatency
        var fixedParams = space.stem.paramBytes
        var fixedActivation = space.stem.peakActivationBytes
        var transfer = 0.0
        var edgeFixed = 0.0
        if let split, let edge {
            transfer = edge.transferMs(split < 0 ? space.stem.stemOutputBytes : space.blocks[split][0].outputBytes)
            edgeFixed = scaled(space.head.referenceLatencyMs, edge.serverGFLOPS)
            fixedLatency += transfer + edgeFixed
        } else {
            let head = scaled(space.head.referenceLatencyMs, device.gflops)
            fixedLatency += head
            fixedDevice += head
            fixedParams += space.head.paramBytes
            fixedActivation = max(fixedActivation, space.head.peakActivationBytes)
        }
        let latencyBudget = device.latencyBudgetMs - fixedLatency
        let memoryBudget = Int((device.memoryBudgetMB * 1_048_576).rounded(.down)) - fixedParams
        let energyBudget = device.effectiveEnergyBudgetMJ.map { $0 - Self.transmitEnergy(transfer) - device.powerWatts * fixedDevice }

        /// The Pareto frontier of complete combinations; with `bounded`, only those within every budget.
        func frontier(bounded: Bool) -> [Candidate] {
            var frontier = [Candidate(latency: 0, deviceLatency: 0, params: 0, activation: fixedActivation, drop: 0, choice: [])]
            for i in 0..<n {
                let onDevice = split.map { i <= $0 } ?? true
                var next: [Candidate] = []
                next.reserveCapacity(frontier.count * space.blocks[i].count)
                for v in space.blocks[i].indices {
                    let p = space.blocks[i][v]
                    let dl = onDevice ? deviceLatency(device, i, v) : 0
                    let l = onDevice ? dl : scaled(p.referenceLatencyMs, edge!.serverGFLOPS)
                    let params = onDevice ? p.paramBytes : 0
                    let act = onDevice ? p.peakActivationBytes : 0
                    for s in frontier {
                        var c = s
                        c.latency += l
                        c.deviceLatency += dl
                        c.params += params
                        c.activation = max(c.activation, act)
                        c.drop += p.accuracyDrop
                        c.choice.append(v)
                        if bounded {
                            // Costs only grow along the chain, so what overruns now never fits.
                            if c.latency > latencyBudget + 1e-9 || c.params + c.activation > memoryBudget { continue }
                            if let e = energyBudget, device.powerWatts * c.deviceLatency > e + 1e-9 { continue }
                        }
                        next.append(c)
                    }
                }
                frontier = Self.paretoPrune(next)
            }
            return frontier
        }
        func complete(_ c: Candidate, feasible: Bool) -> Candidate {
            var c = c
            c.split = split
            c.latency += fixedLatency
            c.deviceLatency += fixedDevice
            c.transferMs = transfer
            c.edgeLatency = split == nil ? 0 : c.latency - c.deviceLatency - transfer
            c.energy = device.powerWatts * c.deviceLatency + Self.transmitEnergy(transfer)
            c.memoryBytes = fixedParams + c.params + c.activation
            c.feasible = feasible
            return c
        }
        if let best = frontier(bounded: true).min(by: { Self.order($0, $1, objective, device.powerWatts) }) {
            return complete(best, feasible: true)
        }
        // Nothing fits: the combination whose worst budget overrun is smallest (it lies on the unbounded frontier).
        let completed = frontier(bounded: false).map { complete($0, feasible: false) }.map { c -> Candidate in
            var c = c
            c.violation = Self.violations(c, device).values.max() ?? 0
            return c
        }
        return completed.min { ($0.violation, $0.drop) < ($1.violation, $1.drop) }!
    }

    static func transmitEnergy(_ transferMs: Double) -> Double { DeviceProfile.transmitWatts * transferMs }

    /// Budget use as a ratio (1 = exactly at the budget).
    static func violations(_ c: Candidate, _ device: DeviceProfile) -> [Budget: Double] {
        var v: [Budget: Double] = [
            .latency: c.latency / device.latencyBudgetMs,
            .memory: Double(c.memoryBytes) / (device.memoryBudgetMB * 1_048_576),
        ]
        if let e = device.effectiveEnergyBudgetMJ { v[.energy] = e > 0 ? c.energy / e : .infinity }
        return v
    }

    /// Most accurate first; then lower latency (or energy); then lower memory; then the variant indices.
    static func order(_ a: Candidate, _ b: Candidate, _ objective: Objective, _ power: Double) -> Bool {
        if abs(a.drop - b.drop) > 1e-12 { return a.drop < b.drop }
        let (ka, kb) = objective == .latency ? (a.latency, b.latency) : (power * a.deviceLatency, power * b.deviceLatency)
        if abs(ka - kb) > 1e-12 { return ka < kb }
        if a.params + a.activation != b.params + b.activation { return a.params + a.activation < b.params + b.activation }
        return a.choice.lexicographicallyPrecedes(b.choice)
    }

    func better(_ a: Candidate, than b: Candidate, objective: Objective) -> Bool {
        if a.feasible != b.feasible { return a.feasible }
        if !a.feasible { return (a.violation, a.drop) < (b.violation, b.drop) }
        if abs(a.drop - b.drop) > 1e-12 { return a.drop < b.drop }
        let (ka, kb) = objective == .latency ? (a.latency, b.latency) : (a.energy, b.energy)
        if abs(ka - kb) > 1e-12 { return ka < kb }
        // Equal: prefer not depending on the link.
        return a.split == nil && b.split != nil
    }

    /// Removes every candidate another one beats or equals on all of latency, device latency, memory and drop.
    static func paretoPrune(_ items: [Candidate]) -> [Candidate] {
        guard items.count > 1 else { return items }
        let sorted = items.sorted { ($0.drop, $0.latency, $0.deviceLatency, $0.params, $0.activation) < ($1.drop, $1.latency, $1.deviceLatency, $1.params, $1.activation) }
        var kept: [Candidate] = []
        kept.reserveCapacity(sorted.count)
        outer: for c in sorted {
            for k in kept where k.latency <= c.latency + 1e-12 && k.deviceLatency <= c.deviceLatency + 1e-12
                && k.params <= c.params && k.activation <= c.activation {
                continue outer
            }
            kept.append(c)
        }
        return kept
    }

    /// Turns the winning candidate into a plan with predicted figures and a reason.
    func finish(_ c: Candidate, _ device: DeviceProfile) -> Plan {
        let accuracy = space.baseAccuracy - c.drop
        let memoryMB = Double(c.memoryBytes) / 1_048_576
        let partition = c.split.map { Partition(splitAfterBlock: $0, deviceLatencyMs: c.deviceLatency, transferMs: c.transferMs, edgeLatencyMs: c.edgeLatency) }
        let prediction = Prediction(accuracy: accuracy, latencyMs: c.latency, memoryMB: memoryMB, energyMJ: c.energy)
        let use = Self.violations(c, device)
        let names = c.choice.enumerated().map { "\(space.blockNames[$0.offset])=\(space.blocks[$0.offset][$0.element].id)" }.joined(separator: ", ")
        if !c.feasible {
            let (budget, ratio) = use.max { $0.value < $1.value }!
            return Plan(variants: c.choice, partition: partition, predicted: prediction, feasible: false, bindingConstraint: budget,
                        reason: "No combination fits: the closest (\(names)) needs \(Self.pct(ratio)) of the \(budget.rawValue) budget.")
        }
        let bestDrop = space.blocks.map { $0.map(\.accuracyDrop).min() ?? 0 }.reduce(0, +)
        var binding: Budget?
        var reason = "Most accurate combination (\(names))"
        if c.drop > bestDrop + 1e-12 {
            binding = use.max { $0.value < $1.value }?.key
            reason += "; the \(binding!.rawValue) budget (\(Self.pct(use[binding!]!)) used) rules out more accurate ones"
        } else {
            reason += "; no budget binds"
        }
        if let p = partition {
            reason += p.splitAfterBlock < 0 ? "; all blocks run on the edge server" : "; split after \(space.blockNames[p.splitAfterBlock]) to the edge server"
        }
        return Plan(variants: c.choice, partition: partition, predicted: prediction, feasible: true, bindingConstraint: binding, reason: reason + ".")
    }

    static func pct(_ x: Double) -> String {
        let v = (x * 1000).rounded() / 10
        return "\(v)%"
    }
}
