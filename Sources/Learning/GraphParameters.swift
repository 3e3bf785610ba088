/// Registration of a graph's parameters from outside the engine (an imported network's initializers), checked
/// rather than trapped, since the names and sizes come from a user's file.
extension ParameterStore {
    /// Registers a trainable parameter (or, with `buffer`, a running statistic) and returns its entry id.
    public func register(_ name: String, shape: [Int], values: [Float], buffer: Bool = false) throws -> Int {
        guard entry(name) == nil else { throw LearningError("parameter \(name) is registered twice") }
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw LearningError("parameter \(name) of shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        }
        return add(name, shape: shape, initial: values, buffer: buffer)
    }
}
