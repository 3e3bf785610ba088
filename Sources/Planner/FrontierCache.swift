import Synchronization

/// Frontiers per device for devices that report measured latencies, so that a re-plan after a context change
/// (budget, battery, bandwidth) is a lookup instead of a DP; measurements change far less often than context.
///
/// One cache per planning space. An entry is rebuilt when the device's measurements or GFLOP/s (which scale its
/// stem and head) change. Eviction is first-in first-out once `capacity` entries are held.
public final class FrontierCache: Sendable {
    public let reference: PlanningFrontier
    private let capacity: Int
    private let state = Mutex(State())

    private struct Entry: Sendable {
        var measured: [[Double]]
        var gflops: Double
        var frontier: PlanningFrontier
    }

    private struct State: Sendable {
        var entries: [String: Entry] = [:]
        var order: [String] = []
        var head = 0
    }

    public init(space: PlanningSpace, capacity: Int = 100_000) throws(PlanningError) {
        reference = try PlanningFrontier(space: space)
        self.capacity = max(1, capacity)
    }

    /// The frontier valid for this device: the shared reference one, or its own measured one (built at most once
    /// per measurement).
    public func frontier(forDevice key: String, _ device: DeviceProfile) throws(PlanningError) -> PlanningFrontier {
        guard let measured = device.measuredLatencyMs else { return reference }
        if let hit = state.withLock({ s -> PlanningFrontier? in
            guard let e = s.entries[key], e.gflops == device.gflops, e.measured == measured else { return nil }
            return e.frontier
        }) { return hit }
        let built = try PlanningFrontier(space: reference.space, device: device)
        state.withLock { s in
            if s.entries.updateValue(Entry(measured: measured, gflops: device.gflops, frontier: built), forKey: key) == nil {
                s.order.append(key)
                while s.order.count - s.head > capacity {
                    s.entries[s.order[s.head]] = nil
                    s.head += 1
                }
                if s.head > 4096 && s.head * 2 > s.order.count {
                    s.order.removeFirst(s.head)
                    s.head = 0
                }
            }
        }
        return built
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
