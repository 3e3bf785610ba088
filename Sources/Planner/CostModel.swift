/// Accuracy drops are summed as integers of 1e-9 so that sums are exact in any order and "ties within 1e-9" is a
/// total order shared by the DP, the frontier, the neighbour search and the brute force.
@usableFromInline let dropUnitsPerAccuracy: Double = 1e9

@inline(__always) func dropUnits(_ drop: Double) -> Int64 { Int64((drop * dropUnitsPerAccuracy).rounded()) }

/// Latencies are summed as integer nanoseconds for the same reason: a combination's latency must not depend on the
/// order of its additions, or exact ties (common: pruned variants share costs) would be broken by rounding noise.
/// Clamped to 0...1e15 ns (11 days), so 258 parts of it still fit an Int64; a NaN (0 × ∞ from an extreme device scale)
/// counts as the clamp, the slowest latency, so that the conversion never traps and such a part is never preferred.
@inline(__always) func latencyUnits(_ ms: Double) -> Int64 {
    let ns = ms * 1e6
    guard !ns.isNaN else { return maxLatencyUnits }
    return Int64(min(max(ns, 0), 1e15).rounded())
}

let maxLatencyUnits: Int64 = 1_000_000_000_000_000

/// Milliseconds of a latency in integer nanoseconds.
@inline(__always) func ms(_ units: Int64) -> Double { Double(units) * 1e-6 }

/// A device profile turned into the few numbers every search path compares against.
///
/// Latencies of the device side are stored in "device units" and multiplied by `deviceScale` at query time:
/// reference ms with `deviceScale = referenceGFLOPS / gflops`, or measured ms with `deviceScale = 1`.
struct DeviceContext {
    let deviceScale: Double
    let serverScale: Double
    let latencyBudget: Double
    let memoryBudgetBytes: Double
    /// `.infinity` when the device has no energy budget.
    let energyBudget: Double
    let power: Double
    /// nil when the device has no usable link (absent or zero bandwidth).
    let link: EdgeLink?
    let objective: PartitionObjective

    init(device: DeviceProfile, space: PlanningSpace, deviceUnitsAreReference: Bool) {
        deviceScale = deviceUnitsAreReference ? space.referenceGFLOPS / device.gflops : 1
        latencyBudget = device.latencyBudgetMs
        memoryBudgetBytes = device.memoryBudgetMB * DeviceProfile.bytesPerMB
        energyBudget = device.effectiveEnergyBudgetMJ ?? .infinity
        power = device.powerWatts
        if let link = device.edge, link.bandwidthMbps > 0 {
            self.link = link
            serverScale = space.referenceGFLOPS / link.serverGFLOPS
        } else {
            self.link = nil
            serverScale = 0
        }
        objective = device.objective
    }
}

/// Marks a candidate that runs entirely on the device; sorts before every real split.
let onDeviceSplit = Int.min

/// One fully costed choice (variants + split) for one device.
struct Candidate: Equatable {
    var drop: Int64
    var latencyMs: Double
    var energyMJ: Double
    var memBytes: Int
    var code: UInt64
    var split: Int
    var deviceMs: Double
    var transferMs: Double
    var serverMs: Double

    var isOnDevice: Bool { split == onDeviceSplit }

    /// The planner's total order: accuracy, then the objective's secondary cost, then the other cost, memory,
    /// lexicographic variants, on-device before lower splits.
    @inline(__always)
    func precedes(_ o: Candidate, _ objective: PartitionObjective) -> Bool {
        if drop != o.drop { return drop < o.drop }
        switch objective {
        case .accuracy:
            if latencyMs != o.latencyMs { return latencyMs < o.latencyMs }
            if energyMJ != o.energyMJ { return energyMJ < o.energyMJ }
        case .accuracyThenEnergy:
            if energyMJ != o.energyMJ { return energyMJ < o.energyMJ }
            if latencyMs != o.latencyMs { return latencyMs < o.latencyMs }
        }
        if memBytes != o.memBytes { return memBytes < o.memBytes }
        if code != o.code { return code < o.code }
        return split < o.split
    }

    @inline(__always)
    func isFeasible(_ ctx: DeviceContext) -> Bool {
        latencyMs <= ctx.latencyBudget && Double(memBytes) <= ctx.memoryBudgetBytes && energyMJ <= ctx.energyBudget
    }

    func violation(_ ctx: DeviceContext) -> Violation {
        Violation(latency: budgetRatio(latencyMs, ctx.latencyBudget),
                  memory: budgetRatio(Double(memBytes), ctx.memoryBudgetBytes),
                  energy: budgetRatio(energyMJ, ctx.energyBudget))
    }
}

/// Use of a budget: 1 is exactly at the budget; an absent (infinite) budget counts as unused.
@inline(__always) func budgetRatio(_ value: Double, _ budget: Double) -> Double {
    if budget == .infinity { return 0 }
    if budget <= 0 { return value > 0 ? .infinity : 0 }
    return value / budget
}

/// How far a candidate is from fitting: the largest of its budget ratios, and which budget that is.
struct Violation {
    let latency: Double
    let memory: Double
    let energy: Double

    var maxRatio: Double { max(latency, memory, energy) }

    /// Ties name latency first, then memory.
    var kind: BudgetKind {
        if latency >= memory && latency >= energy { return .latency }
        return memory >= energy ? .memory : .energy
    }

    func ratio(_ kind: BudgetKind) -> Double {
        switch kind {
        case .latency: latency
        case .memory: memory
        case .energy: energy
        }
    }
}

/// Closest candidates are ordered by their largest budget ratio, then by the planner's order.
@inline(__always)
func closer(_ a: (Candidate, Violation), than b: (Candidate, Violation)?, _ objective: PartitionObjective) -> Bool {
    guard let b else { return true }
    let ma = a.1.maxRatio, mb = b.1.maxRatio
    if ma != mb { return ma < mb }
    return a.0.precedes(b.0, objective)
}

/// What a search found for one device: the best feasible candidate, or the closest one, plus the closest more
/// accurate candidate when an explanation is wanted.
struct Decision {
    var best: Candidate?
    var closest: (Candidate, Violation)?
    var moreAccurate: (Candidate, Violation)?
}

/// Costs of a whole chain on the device; the one formula every search path shares, so their floats agree bit for bit.
@inline(__always)
func makeOnDeviceCandidate(_ p: ChainPoint, _ ctx: DeviceContext) -> Candidate {
    let devMs = ctx.deviceScale * ms(p.lat)
    return Candidate(drop: p.drop, latencyMs: devMs, energyMJ: ctx.power * devMs, memBytes: p.mem, code: p.code,
                     split: onDeviceSplit, deviceMs: devMs, transferMs: 0, serverMs: 0)
}

/// Costs of a device prefix, a transfer and a server suffix (latency = device + transfer + server).
@inline(__always)
func makePartitionCandidate(_ p: PrefixPoint, _ s: StairPoint, split k: Int, _ ctx: DeviceContext,
                            _ link: EdgeLink) -> Candidate {
    let devMs = ctx.deviceScale * ms(p.lat)
    let txMs = link.transmitMs(bytes: p.bytes)
    let transferMs = txMs + link.rttMs
    let serverMs = ctx.serverScale * ms(s.lat)
    return Candidate(drop: p.drop + s.drop, latencyMs: (devMs + transferMs) + serverMs,
                     energyMJ: ctx.power * devMs + link.txPowerWatts * txMs, memBytes: p.mem,
                     code: p.code + s.code, split: k, deviceMs: devMs, transferMs: transferMs, serverMs: serverMs)
}
