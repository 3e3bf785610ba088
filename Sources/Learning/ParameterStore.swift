/// Every parameter of a model in one slab, and every gradient in another, so an optimiser step is one flat
/// loop. Buffers (batch-norm running statistics) live in their own slab: saved and loaded, never trained.
public final class ParameterStore {
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public let count: Int
        public let isBuffer: Bool
    }

    public internal(set) var values: [Float] = []
    public internal(set) var grads: [Float] = []
    public internal(set) var buffers: [Float] = []
    public private(set) var entries: [Entry] = []
    /// Per parameter (not buffer): whether training updates it. Frozen layers compute no weight gradient.
    public internal(set) var trainable: [Bool] = []
    var index: [String: Int] = [:]

    public init() {}

    /// Registers a parameter (or a buffer) and returns its entry index.
    func add(_ name: String, shape: [Int], initial: [Float], buffer: Bool = false) -> Int {
        let count = shape.reduce(1, *)
        precondition(initial.count == count)
        precondition(index[name] == nil, "parameter \(name) registered twice")
        let offset: Int
        if buffer {
            offset = buffers.count
            buffers += initial
        } else {
            offset = values.count
            values += initial
            grads += [Float](repeating: 0, count: count)
        }
        entries.append(Entry(name: name, shape: shape, offset: offset, count: count, isBuffer: buffer))
        trainable.append(!buffer)
        index[name] = entries.count - 1
        return entries.count - 1
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// Sets which parameters train, by a predicate on their names.
    public func setTrainable(_ predicate: (String) -> Bool) {
        for (i, e) in entries.enumerated() where !e.isBuffer { trainable[i] = predicate(e.name) }
    }

    public func isTrainable(_ id: Int) -> Bool { trainable[id] }

    public func zeroGrads() {
        grads.withUnsafeMutableBufferPointer { g in for i in g.indices { g[i] = 0 } }
    }

    public var trainableCount: Int {
        entries.indices.filter { !entries[$0].isBuffer && trainable[$0] }.reduce(0) { $0 + entries[$1].count }
    }

    /// Values of one parameter or buffer by name.
    public func tensor(_ name: String) -> Tensor? {
        guard let e = entry(name) else { return nil }
        let slab = e.isBuffer ? buffers : values
        return Tensor(shape: e.shape, data: Array(slab[e.offset..<(e.offset + e.count)]))
    }

    /// Overwrites one parameter or buffer; the shape must match.
    public func set(_ name: String, _ values: [Float]) throws {
        guard let e = entry(name) else { throw LearningError("no parameter named \(name)") }
        guard values.count == e.count else { throw LearningError("\(name) needs \(e.count) values, got \(values.count)") }
        if e.isBuffer { buffers.replaceSubrange(e.offset..<(e.offset + e.count), with: values) }
        else { self.values.replaceSubrange(e.offset..<(e.offset + e.count), with: values) }
    }
}

public struct LearningError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
