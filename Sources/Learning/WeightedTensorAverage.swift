/// A running weighted average of named tensors (weights: the samples each contribution trained on), kept per
/// tensor: a tensor absent from one contribution is averaged over the contributions that had it. Folding
/// contributions one at a time gives the batch weighted average, so an average can be stored and extended later.
public struct WeightedTensorAverage: Sendable {
    public private(set) var entries: [String: (shape: [Int], values: [Float], weight: Double)]

    /// An empty average, or one resumed from stored tensors and their accumulated weights.
    public init(tensors: [String: SafeTensor] = [:], weights: [String: Double] = [:], defaultWeight: Double = 0) throws {
        entries = [:]
        for (name, t) in tensors { entries[name] = (t.shape, try t.floats(), weights[name] ?? defaultWeight) }
    }

    /// Folds one contribution in with `weight`. Refuses the whole contribution (changing nothing, returning false)
    /// when a tensor is not F32 or its shape disagrees with what was averaged so far.
    public mutating func fold(_ tensors: [String: SafeTensor], weight: Double) -> Bool {
        var incoming: [String: ([Int], [Float])] = [:]
        for (name, t) in tensors {
            guard let floats = try? t.floats(), entries[name].map({ $0.shape == t.shape }) ?? true else { return false }
            incoming[name] = (t.shape, floats)
        }
        for (name, (shape, floats)) in incoming {
            let old = entries[name] ?? (shape, [Float](repeating: 0, count: floats.count), 0)
            let total = old.weight + weight
            let a = Float(old.weight / total), b = Float(weight / total)
            entries[name] = (shape, zip(old.values, floats).map { a * $0 + b * $1 }, total)
        }
        return true
    }

    public var tensors: [String: SafeTensor] { entries.mapValues { SafeTensor(floats: $0.values, shape: $0.shape) } }
    public var weights: [String: Double] { entries.mapValues(\.weight) }
}
