/// Everything about a planning space that does not depend on the device, precomputed once, so that a device's
/// plan is a few binary searches.
///
/// Device-side latencies are kept in "device units": reference ms (valid for every device, scaled by
/// `referenceGFLOPS / gflops` at query time, since a uniform scale preserves dominance) or one device's measured
/// ms. Built by a Pareto DP over the chain; every structure below is exact (no approximation), because a point
/// pruned by dominance can never be the answer of any query whose costs are monotone.
public struct PlanningFrontier: Sendable {
    public let space: PlanningSpace
    /// false when the frontier was built from one device's measured latencies (then it is for that device only).
    public let usesReferenceLatencies: Bool
    let blockCount: Int
    let radices: [Int]
    /// Mixed-radix weights: code = Σ variant[i] × weights[i], block 0 most significant.
    let weights: [UInt64]
    let globalMinDrop: Int64

    /// Whole chain on the device: Pareto set of (latency, memory, drop), sorted by drop ascending.
    let chain: [ChainPoint]
    /// Distinct memory values of `chain`, ascending; staircase j holds the points with memory ≤ memLevels[j].
    let memLevels: [Int]
    let levelStart: [Int]
    let levelStairs: [ChainPoint]

    /// For a cut after block k (k = −1...n−2, stored at index k + 1): device prefixes, sorted by drop ascending.
    let prefixes: [[PrefixPoint]]
    /// (latency, drop) staircase of each prefix set, ignoring memory and tensor size: for cheap bounds.
    let prefixStairs: [[StairPoint]]
    let prefixMinMem: [Int]
    let prefixMinBytes: [Int]
    /// Server side after a cut after block k (blocks k+1..., head): (latency, drop) staircase in reference ms.
    let suffixes: [[StairPoint]]

    /// Frontier in reference latencies, valid for every device without measured latencies.
    public init(space: PlanningSpace) throws(PlanningError) {
        try space.validate()
        self.init(validSpace: space, deviceLatency: space.blocks.map { $0.variants.map(\.referenceLatencyMs) },
                  stemLatency: space.stem.referenceLatencyMs, headLatency: space.head.referenceLatencyMs,
                  reference: true)
    }

    /// Frontier for one device; uses its measured latencies when it has them (AdaptiveNet-style), else reference.
    public init(space: PlanningSpace, device: DeviceProfile) throws(PlanningError) {
        try space.validate()
        try device.validate(for: space)
        guard let measured = device.measuredLatencyMs else {
            self.init(validSpace: space, deviceLatency: space.blocks.map { $0.variants.map(\.referenceLatencyMs) },
                      stemLatency: space.stem.referenceLatencyMs, headLatency: space.head.referenceLatencyMs,
                      reference: true)
            return
        }
        let scale = space.referenceGFLOPS / device.gflops
        self.init(validSpace: space, deviceLatency: measured, stemLatency: space.stem.referenceLatencyMs * scale,
                  headLatency: space.head.referenceLatencyMs * scale, reference: false)
    }

    init(validSpace space: PlanningSpace, deviceLatency: [[Double]], stemLatency: Double, headLatency: Double,
         reference: Bool) {
        self.space = space
        usesReferenceLatencies = reference
        let n = space.blocks.count
        blockCount = n
        radices = space.blocks.map(\.variants.count)
        var w = [UInt64](repeating: 1, count: n)
        for i in stride(from: n - 2, through: 0, by: -1) { w[i] = w[i + 1] * UInt64(radices[i + 1]) }
        weights = w
        let drops = space.blocks.map { $0.variants.map { dropUnits($0.accuracyDrop) } }
        let deviceLatency = deviceLatency.map { $0.map(latencyUnits) }
        let stemLatency = latencyUnits(stemLatency), headLatency = latencyUnits(headLatency)
        globalMinDrop = drops.reduce(0) { $0 + ($1.min() ?? 0) }

        // Forward DP over device prefixes.
        var level = [DPState(lat: stemLatency, params: space.stem.paramBytes, act: space.stem.peakActivationBytes,
                             drop: 0, code: 0)]
        var prefixes: [[PrefixPoint]] = [[PrefixPoint(
            lat: stemLatency, mem: space.stem.paramBytes + space.stem.peakActivationBytes, drop: 0,
            bytes: space.inputBytes, code: 0)]]
        for i in 0..<n {
            let variants = space.blocks[i].variants
            var next: [DPState] = []
            var cut: [PrefixPoint] = []
            next.reserveCapacity(level.count * variants.count)
            for s in level {
                for (v, variant) in variants.enumerated() {
                    let t = DPState(lat: s.lat + deviceLatency[i][v], params: s.params + variant.paramBytes,
                                    act: max(s.act, variant.peakActivationBytes), drop: s.drop + drops[i][v],
                                    code: s.code + UInt64(v) * w[i])
                    next.append(t)
                    if i < n - 1 {
                        cut.append(PrefixPoint(lat: t.lat, mem: t.params + t.act, drop: t.drop,
                                               bytes: variant.outputBytes, code: t.code))
                    }
                }
            }
            if i < n - 1 { prefixes.append(paretoFilter(cut)) }
            level = paretoFilter(next)
        }
        let head = space.head
        let whole = level.map {
            ChainPoint(lat: $0.lat + headLatency, mem: ($0.params + head.paramBytes) + max($0.act, head.peakActivationBytes),
                       drop: $0.drop, code: $0.code)
        }
        let chainByLatency = paretoFilter(whole)
        chain = chainByLatency.sorted { $0.drop != $1.drop ? $0.drop < $1.drop : ChainPoint.sortsBefore($0, $1) }

        // Memory levels: staircase j is over all chain points with memory ≤ memLevels[j].
        let byMem = chainByLatency.sorted { $0.mem != $1.mem ? $0.mem < $1.mem : ChainPoint.sortsBefore($0, $1) }
        var levels: [Int] = [], starts: [Int] = [], stairs: [ChainPoint] = []
        var included: [ChainPoint] = []
        var idx = 0
        while idx < byMem.count {
            let m = byMem[idx].mem
            while idx < byMem.count && byMem[idx].mem == m {
                let p = byMem[idx]
                let at = lastTrue(included.count, { ChainPoint.sortsBefore(included[$0], p) }).map { $0 + 1 } ?? 0
                included.insert(p, at: at)
                idx += 1
            }
            levels.append(m)
            starts.append(stairs.count)
            var lastDrop = Int64.max
            for p in included where p.drop < lastDrop { stairs.append(p); lastDrop = p.drop }
        }
        starts.append(stairs.count)
        memLevels = levels
        levelStart = starts
        levelStairs = stairs

        self.prefixes = prefixes.map { $0.sorted { $0.drop != $1.drop ? $0.drop < $1.drop : PrefixPoint.sortsBefore($0, $1) } }
        prefixStairs = prefixes.map { staircase($0.map { StairPoint(lat: $0.lat, drop: $0.drop, code: $0.code) }) }
        prefixMinMem = prefixes.map { $0.map(\.mem).min() ?? 0 }
        prefixMinBytes = prefixes.map { $0.map(\.bytes).min() ?? 0 }

        // Backward DP over server suffixes, in reference ms; suffix after block n−1 is the head alone.
        var suffixes = [[StairPoint]](repeating: [], count: n + 1)
        suffixes[n] = [StairPoint(lat: latencyUnits(head.referenceLatencyMs), drop: 0, code: 0)]
        for k in stride(from: n - 2, through: -1, by: -1) {
            let i = k + 1
            var cands: [StairPoint] = []
            for (v, variant) in space.blocks[i].variants.enumerated() {
                for s in suffixes[k + 2] {
                    cands.append(StairPoint(lat: latencyUnits(variant.referenceLatencyMs) + s.lat, drop: drops[i][v] + s.drop,
                                            code: UInt64(v) * w[i] + s.code))
                }
            }
            suffixes[k + 1] = staircase(cands)
        }
        self.suffixes = Array(suffixes[0..<n])
    }

    /// Number of whole-chain combinations kept on the on-device frontier.
    public var frontierSize: Int { chain.count }

    /// Variant index per block for a combination code.
    public func variants(ofCode code: UInt64) -> [Int] {
        (0..<blockCount).map { Int((code / weights[$0]) % UInt64(radices[$0])) }
    }
}
