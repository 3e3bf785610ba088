import Dispatch
import Synchronization

/// Every Pareto-optimal combination of a space in reference units (latency at the reference speed,
/// device memory, accuracy drop), sorted most accurate first. For a device without measured latencies and
/// without an edge link, latency scales by one factor, so its plan is the first point of this list that fits:
/// a lookup instead of a search. Built once per model.
public struct PlanningFrontier: Sendable {
    public struct Point: Sendable {
        public let referenceLatencyMs: Double
        public let memoryBytes: Int
        public let drop: Double
        public let variants: [Int]
    }

    public let points: [Point]
    let space: PlanningSpace
    /// Smallest reference latency and memory over all points, for fast infeasibility answers.
    let minLatency: Double
    let minMemory: Int

    public init(space: PlanningSpace) {
        self.space = space
        let planner = Planner(space: space)
        // The reference device: speed = reference, no budgets (unbounded frontier), all on the device.
        let reference = DeviceProfile(gflops: space.referenceGFLOPS, powerWatts: 0, latencyBudgetMs: .infinity,
                                      memoryBudgetMB: .infinity)
        let all = planner.frontierAll(reference)
        // Keep only what is non-dominated in (latency, memory, drop): device latency equals latency here.
        var pts = all.map { Point(referenceLatencyMs: $0.latency, memoryBytes: $0.memoryBytes, drop: $0.drop, variants: $0.choice) }
        pts.sort { ($0.drop, $0.referenceLatencyMs, $0.memoryBytes) < ($1.drop, $1.referenceLatencyMs, $1.memoryBytes) }
        var kept: [Point] = []
        outer: for p in pts {
            for k in kept where k.referenceLatencyMs <= p.referenceLatencyMs + 1e-12 && k.memoryBytes <= p.memoryBytes { continue outer }
            kept.append(p)
        }
        points = kept
        minLatency = kept.map(\.referenceLatencyMs).min() ?? 0
        minMemory = kept.map(\.memoryBytes).min() ?? 0
    }

    /// The plan for a device whose latencies scale with its speed (no measured table, no edge link).
    /// Returns nil when the device needs the full planner (measured latencies, an edge link, or nothing fits).
    public func lookup(_ device: DeviceProfile) -> (index: Int, point: Point)? {
        guard device.measuredLatencyMs == nil, device.edge == nil else { return nil }
        let scale = space.referenceGFLOPS / device.gflops
        var latencyCap = device.latencyBudgetMs
        if let e = device.effectiveEnergyBudgetMJ { latencyCap = min(latencyCap, device.powerWatts > 0 ? e / device.powerWatts : .infinity) }
        let referenceCap = latencyCap / scale + 1e-9
        let memoryCap = Int((device.memoryBudgetMB * 1_048_576).rounded(.down))
        if minLatency > referenceCap || minMemory > memoryCap { return nil }
        for i in points.indices {
            let p = points[i]
            if p.referenceLatencyMs <= referenceCap && p.memoryBytes <= memoryCap { return (i, p) }
        }
        return nil
    }

    /// Plans many devices at once on all cores: the frontier index per device, −1 where the lookup cannot
    /// answer (those go to the full planner). Each chunk fills a local array, copied out under a lock once.
    public func planFleet(_ devices: [DeviceProfile]) -> [Int32] {
        let chunks = max(1, min(devices.count / 4096, 64))
        let chunkSize = (devices.count + chunks - 1) / chunks
        let out = Mutex([Int32](repeating: -1, count: devices.count))
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let start = c * chunkSize
            let end = min(devices.count, start + chunkSize)
            guard start < end else { return }
            var local = [Int32](repeating: -1, count: end - start)
            for i in start..<end { local[i - start] = Int32(lookup(devices[i])?.index ?? -1) }
            out.withLock { $0.replaceSubrange(start..<end, with: local) }
        }
        return out.withLock { $0 }
    }
}

extension Planner {
    /// Every non-dominated complete combination on the device alone, without budgets.
    func frontierAll(_ device: DeviceProfile) -> [Candidate] {
        let n = space.blocks.count
        var frontier = [Candidate(latency: 0, deviceLatency: 0, params: 0, activation: max(space.stem.peakActivationBytes, space.head.peakActivationBytes), drop: 0, choice: [])]
        for i in 0..<n {
            var next: [Candidate] = []
            for v in space.blocks[i].indices {
                let p = space.blocks[i][v]
                for s in frontier {
                    var c = s
                    c.latency += p.referenceLatencyMs * space.referenceGFLOPS / device.gflops
                    c.deviceLatency = c.latency
                    c.params += p.paramBytes
                    c.activation = max(c.activation, p.peakActivationBytes)
                    c.drop += p.accuracyDrop
                    c.choice.append(v)
                    next.append(c)
                }
            }
            frontier = Self.paretoPrune(next)
        }
        let fixed = (space.stem.referenceLatencyMs + space.head.referenceLatencyMs) * space.referenceGFLOPS / device.gflops
        return frontier.map { c in
            var c = c
            c.latency += fixed
            c.memoryBytes = space.stem.paramBytes + space.head.paramBytes + c.params + c.activation
            return c
        }
    }
}
