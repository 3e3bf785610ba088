import Dispatch

/// Splitting one op's work into lanes that run on separate threads. A pass's `Tape.threads` says how many;
/// each lane takes a contiguous range (of samples, or of channels) and its own scratch, so lanes never write
/// the same memory and the result equals the one-lane result (up to the order of a few float sums).
enum Lanes {
    /// Runs `body(lane, range)` for `lanes` contiguous ranges of 0..<count, concurrently when more than one.
    /// The body is `@Sendable`: it reaches buffers through `Address` values, not captured pointers.
    static func run(_ count: Int, lanes: Int, _ body: @Sendable (Int, Range<Int>) -> Void) {
        let lanes = max(1, min(lanes, count))
        if lanes == 1 { body(0, 0..<count); return }
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            body(lane, range(lane, of: lanes, count: count))
        }
    }

    /// Lane `lane` of `lanes` over 0..<count: the first `count % lanes` lanes take one more.
    static func range(_ lane: Int, of lanes: Int, count: Int) -> Range<Int> {
        let base = count / lanes, extra = count % lanes
        let lo = lane * base + min(lane, extra)
        return lo..<(lo + base + (lane < extra ? 1 : 0))
    }

    /// How many lanes an op of `count` independent items uses: no more than there are items.
    static func count(_ threads: Int, items: Int) -> Int { max(1, min(threads, items)) }
}

/// A float buffer's address as a plain integer, so a `@Sendable` lane body can reach memory that the caller owns
/// and keeps alive for the whole `Lanes.run` call (the lanes write disjoint parts of it).
struct Address: Sendable {
    let bits: UInt

    init(_ p: UnsafeMutablePointer<Float>) { bits = UInt(bitPattern: p) }
    init(_ p: UnsafePointer<Float>) { bits = UInt(bitPattern: p) }

    var mutable: UnsafeMutablePointer<Float> { UnsafeMutablePointer(bitPattern: bits)! }
    var pointer: UnsafePointer<Float> { UnsafePointer(bitPattern: bits)! }
}
