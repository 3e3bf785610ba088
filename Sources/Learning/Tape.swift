/// The per-call state of one forward/backward pass, owned by the caller: what each layer saved for its backward,
/// and a workspace of scratch buffers reused across calls. Layers hold only parameters (and batch-norm running
/// statistics), so one network serves concurrent inferences, each with its own tape or none.
public final class Tape {
    /// What one application of an op saved for its backward.
    enum Saved: Sendable {
        /// A convolution's or linear layer's input (nil when its weight is frozen: dx needs only the weight).
        case input(Tensor?, shape: [Int])
        /// Batch norm: x̂ (empty after an evaluation-mode pass), 1/σ per channel, and which statistics normalised.
        case normalised(xhat: [Float], invstd: [Float], shape: [Int], batchStatistics: Bool)
        /// An elementwise op's input or output, whichever its derivative reads.
        case values([Float])
        /// Max pooling: the flat input index of each output's maximum.
        case argmax([Int], shape: [Int])
        /// Ops whose backward needs only the input shape.
        case shape([Int])
        /// A whole graph pass (a graph used as a layer).
        case graph(Graph.Frame)

        var floats: Int {
            switch self {
            case .input(let t, _): return t?.count ?? 0
            case .normalised(let xhat, let invstd, _, _): return xhat.count + invstd.count
            case .values(let v): return v.count
            case .argmax(let a, _): return a.count
            case .shape: return 0
            case .graph(let frame): return frame.floats
            }
        }
    }

    /// A stack per layer: a layer applied twice in one pass pops its records in reverse order.
    private var records: [ObjectIdentifier: [Saved]] = [:]
    /// Saved node values of graph passes, innermost last.
    var frames: [Graph.Frame] = []
    public let workspace = Workspace()
    /// False for an inference context: the workspace alone, nothing saved.
    public let saving: Bool
    /// Threads a pass on this tape may use: convolutions split their samples into this many lanes, batch norms
    /// their channels (`Lanes`); OpenBLAS itself stays on one thread per call.
    public var threads: Int

    public init(saving: Bool = true, threads: Int = 1) {
        precondition(threads >= 1, "a tape needs at least one thread")
        self.saving = saving
        self.threads = threads
    }

    func push(_ owner: AnyObject, _ saved: @autoclosure () -> Saved) {
        guard saving else { return }
        records[ObjectIdentifier(owner), default: []].append(saved())
    }

    func pop(_ owner: AnyObject) -> Saved {
        guard let saved = records[ObjectIdentifier(owner)]?.popLast() else {
            preconditionFailure("backward through \(type(of: owner)) without a forward on this tape")
        }
        return saved
    }

    /// Drops the last record of `layer` (of each layer of a `Sequential`), for a backward that skips it.
    func drop(_ layer: Layer) {
        if let s = layer as? Sequential { for l in s.layers.reversed() { drop(l) }; return }
        _ = records[ObjectIdentifier(layer)]?.popLast()
    }

    /// Floats held for backward (activation memory).
    public var savedFloats: Int {
        records.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.floats } } + frames.reduce(0) { $0 + $1.floats }
    }

    /// Forgets every saved value and keeps the workspace (for the next pass).
    public func reset() {
        records.removeAll(keepingCapacity: true)
        frames.removeAll()
    }
}

/// Scratch buffers (im2col columns and GEMM staging) that grow to the largest request and are reused, so a
/// steady-state pass allocates only the tensors it returns. One workspace serves one thread at a time.
public final class Workspace {
    // Owned memory, freed in deinit; a pointer handed out is valid until the same slot is asked for again.
    private var slots: [UnsafeMutableBufferPointer<Float>] = []

    public init() {}

    deinit { for s in slots { s.deallocate() } }

    /// Slot `slot`, at least `count` floats, contents unspecified.
    func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while slots.count <= slot { slots.append(UnsafeMutableBufferPointer(start: nil, count: 0)) }
        if slots[slot].count < count {
            slots[slot].deallocate()
            slots[slot] = .allocate(capacity: max(count, 1))
        }
        return slots[slot].baseAddress!
    }
}
