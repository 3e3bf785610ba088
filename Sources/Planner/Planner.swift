import Dispatch
import Synchronization

/// Entry points of the planner: one device, its exhaustive reference, and a whole fleet.
///
/// Pure computation: no I/O, no clock, no shared state.
public enum Planner {
    /// Exact plan for one device by a Pareto DP over the chain (from its measured latencies when it has them).
    public static func plan(space: PlanningSpace, device: DeviceProfile) throws(PlanningError) -> Plan {
        try PlanningFrontier(space: space, device: device).plan(for: device)
    }

    /// The same plan by exhaustive enumeration of combinations × cuts; for tests and benchmarks.
    public static func bruteForcePlan(space: PlanningSpace, device: DeviceProfile) throws(PlanningError) -> Plan {
        try space.validate()
        try device.validate(for: space)
        let ctx = DeviceContext(device: device, space: space, deviceUnitsAreReference: device.measuredLatencyMs == nil)
        return makePlan(BruteForce.decide(space: space, device: device, explain: true), space: space, device: device,
                        ctx: ctx)
    }

    /// Exhaustive decision without explanation, to time against `PlanningFrontier.summary(for:)`.
    public static func bruteForceSummary(space: PlanningSpace, device: DeviceProfile,
                                         frontier: PlanningFrontier) throws(PlanningError) -> PlanSummary {
        try device.validate(for: space)
        return frontier.summary(of: BruteForce.decide(space: space, device: device, explain: false))
    }

    /// Re-plans a whole fleet on every core; element i is nil when device i's profile is invalid.
    ///
    /// Work is split into contiguous chunks (many more than cores, so uneven devices balance out); each chunk
    /// plans into its own array and hands it over under a mutex once, so the lock is taken a few hundred times.
    public static func planFleet(_ devices: [DeviceProfile], frontier: PlanningFrontier) -> [PlanSummary?] {
        let count = devices.count
        guard count > 0 else { return [] }
        let chunkSize = max(256, count / 256)
        let chunks = (count + chunkSize - 1) / chunkSize
        let parts = Mutex([[PlanSummary?]](repeating: [], count: chunks))
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let range = (chunk * chunkSize)..<min(count, (chunk + 1) * chunkSize)
            var local: [PlanSummary?] = []
            local.reserveCapacity(range.count)
            for i in range { local.append(try? frontier.summary(for: devices[i])) }
            parts.withLock { $0[chunk] = local }
        }
        return parts.withLock { all in
            var out: [PlanSummary?] = []
            out.reserveCapacity(count)
            for part in all { out.append(contentsOf: part) }
            return out
        }
    }
}
