/// Points that can be pruned by dominance: if `a` sorts before `b` and is no worse in every cost, `b` can never
/// be the answer to any query whose cost is monotone in those costs.
///
/// Costs beyond the sort key are split as: a `bucket` (a cost with few distinct values: peak activation, tensor
/// size) and a pair (`x`, `y`) kept on a 2-D staircase per bucket, so a dominance test is a few binary searches.
protocol ParetoPoint {
    /// A lexicographic order over all costs and finally the combination code.
    static func sortsBefore(_ a: Self, _ b: Self) -> Bool
    var bucket: Int { get }
    var x: Int { get }
    var y: Int64 { get }
}

/// Keeps the non-dominated points, in sort order.
///
/// Sorting lexicographically first means a later point can never dominate an earlier one, so one pass suffices:
/// a point is dominated iff some bucket ≤ its own holds an earlier point with x ≤ and y ≤ its own.
func paretoFilter<T: ParetoPoint>(_ points: [T]) -> [T] {
    let sorted = points.sorted(by: T.sortsBefore)
    var kept: [T] = []
    var keys: [Int] = []
    var stairs: [Staircase] = []
    for p in sorted {
        var dominated = false
        for (i, key) in keys.enumerated() where key <= p.bucket && stairs[i].covers(x: p.x, y: p.y) {
            dominated = true
            break
        }
        if dominated { continue }
        kept.append(p)
        if let i = keys.firstIndex(of: p.bucket) {
            stairs[i].insert(x: p.x, y: p.y)
        } else {
            keys.append(p.bucket)
            stairs.append(Staircase(xs: [p.x], ys: [p.y]))
        }
    }
    return kept
}

/// Minimal (x, y) pairs: x ascending, y strictly descending.
struct Staircase {
    var xs: [Int]
    var ys: [Int64]

    /// Some pair has x' ≤ x and y' ≤ y.
    func covers(x: Int, y: Int64) -> Bool {
        guard let i = lastTrue(xs.count, { xs[$0] <= x }) else { return false }
        return ys[i] <= y
    }

    /// Adds a pair not covered by the staircase, dropping the pairs it covers.
    mutating func insert(x: Int, y: Int64) {
        let at = lastTrue(xs.count, { xs[$0] < x }).map { $0 + 1 } ?? 0
        var end = at
        while end < xs.count && ys[end] >= y { end += 1 }
        xs.replaceSubrange(at..<end, with: [x])
        ys.replaceSubrange(at..<end, with: [y])
    }
}

/// A state of the prefix DP: blocks 0...i chosen, device side.
struct DPState: ParetoPoint {
    var lat: Int64
    var params: Int
    var act: Int
    var drop: Int64
    var code: UInt64

    static func sortsBefore(_ a: DPState, _ b: DPState) -> Bool {
        if a.lat != b.lat { return a.lat < b.lat }
        if a.drop != b.drop { return a.drop < b.drop }
        if a.params != b.params { return a.params < b.params }
        if a.act != b.act { return a.act < b.act }
        return a.code < b.code
    }

    var bucket: Int { act }
    var x: Int { params }
    var y: Int64 { drop }
}

/// A device-side prefix for a cut after some block: its latency, memory, drop and the tensor it sends.
struct PrefixPoint: ParetoPoint {
    var lat: Int64
    var mem: Int
    var drop: Int64
    var bytes: Int
    var code: UInt64

    static func sortsBefore(_ a: PrefixPoint, _ b: PrefixPoint) -> Bool {
        if a.lat != b.lat { return a.lat < b.lat }
        if a.drop != b.drop { return a.drop < b.drop }
        if a.mem != b.mem { return a.mem < b.mem }
        if a.bytes != b.bytes { return a.bytes < b.bytes }
        return a.code < b.code
    }

    var bucket: Int { bytes }
    var x: Int { mem }
    var y: Int64 { drop }
}

/// A whole chain run on the device (stem, blocks, head).
struct ChainPoint: ParetoPoint {
    var lat: Int64
    var mem: Int
    var drop: Int64
    var code: UInt64

    static func sortsBefore(_ a: ChainPoint, _ b: ChainPoint) -> Bool {
        if a.lat != b.lat { return a.lat < b.lat }
        if a.drop != b.drop { return a.drop < b.drop }
        if a.mem != b.mem { return a.mem < b.mem }
        return a.code < b.code
    }

    var bucket: Int { 0 }
    var x: Int { mem }
    var y: Int64 { drop }
}

/// A two-cost point (latency, drop) on a staircase.
struct StairPoint {
    var lat: Int64
    var drop: Int64
    var code: UInt64
}

/// The 2-D Pareto staircase: latency ascending, drop strictly descending; among equal drops the earliest
/// (lowest latency, then lowest code) survives, which is what the planner's order prefers.
func staircase(_ points: [StairPoint]) -> [StairPoint] {
    paretoStaircase(points, first: \.lat, second: \.drop, tieBreak: { $0.code < $1.code })
}

/// The points no other point beats in two costs to minimise: by `first` ascending, `second` strictly descending.
/// Among points equal in both the one `tieBreak` orders first survives, so the answer does not depend on the input's
/// order. (The planner's own staircase and the elastic package's accuracy–latency frontier both use it.)
public func paretoStaircase<T, A: Comparable, B: Comparable>(_ points: [T], first: (T) -> A, second: (T) -> B,
                                                             tieBreak: (T, T) -> Bool) -> [T] {
    let sorted = points.sorted { a, b in
        let (fa, fb) = (first(a), first(b))
        if fa != fb { return fa < fb }
        let (sa, sb) = (second(a), second(b))
        if sa != sb { return sa < sb }
        return tieBreak(a, b)
    }
    var out: [T] = []
    for p in sorted where out.isEmpty || second(p) < second(out[out.count - 1]) { out.append(p) }
    return out
}

/// Index of the last element for which a monotone predicate (true…true false…false) holds, or nil.
@inline(__always)
func lastTrue(_ count: Int, _ holds: (Int) -> Bool) -> Int? {
    var lo = 0, hi = count  // answer in [lo, hi): first false
    while lo < hi {
        let mid = (lo + hi) >> 1
        if holds(mid) { lo = mid + 1 } else { hi = mid }
    }
    return lo == 0 ? nil : lo - 1
}
