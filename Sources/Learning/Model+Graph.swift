/// The built-in families as graphs over the same parameters: the stem, blocks, pool and head lowered op by op,
/// in the order the layers compute, so a graph's outputs equal the layers' bit for bit.
extension Model {
    /// The blocks after block `last` (all of the network, stem included, for `last` = nil), the pool and the
    /// head as a graph; its input is the network's input, or the features after block `last`.
    public func graph(after last: Int? = nil) throws -> Graph {
        var g = Graph(inputs: 1)
        var h = 0
        if let last {
            precondition((-1..<blocks.count).contains(last))
            for b in blocks.dropFirst(last + 1) { h = try Self.lower(b, from: h, into: &g) }
        } else {
            h = try Self.lower(stem, from: h, into: &g)
            for b in blocks { h = try Self.lower(b, from: h, into: &g) }
        }
        h = g.add(.globalAveragePool, [h], name: "pool")
        h = g.add(.flatten, [h], name: "pool.flatten")
        if let headHidden { h = try Self.lower(headHidden, from: h, into: &g) }
        h = try Self.lower(head, from: h, into: &g)
        g.outputs = [h]
        return g
    }

    /// Appends `layer` reading value `x` and returns its output value.
    static func lower(_ layer: Layer, from x: Int, into g: inout Graph) throws -> Int {
        switch layer {
        case let c as Conv2d: return g.add(.conv(c.geometry, weight: c.weightID, bias: c.biasID), [x], name: c.name)
        case let bn as BatchNorm2d:
            return g.add(.batchNorm(gamma: bn.gammaID, beta: bn.betaID, mean: bn.meanID, variance: bn.varID, eps: bn.eps, momentum: bn.momentum),
                         [x], name: bn.name)
        case let r as ReLU: return g.add(.activation(r.function), [x])
        case let p as Pool2d: return g.add(.pool(p.pooling), [x])
        case is GlobalAvgPool:
            return g.add(.flatten, [g.add(.globalAveragePool, [x])])
        case let u as Upsample: return g.add(.upsample(height: u.height, width: u.width), [x])
        case is Flatten: return g.add(.flatten, [x])
        case let l as Linear: return g.add(.gemm(l.dense, weight: l.weightID, bias: l.biasID), [x])
        case let s as Sequential:
            var h = x
            for l in s.layers { h = try lower(l, from: h, into: &g) }
            return h
        case let b as Block:
            // As Block.forward: (main + shortcut or x) + adapter, then the final ReLU.
            var y: Int
            if let main = b.main {
                y = try lower(main, from: x, into: &g)
                if b.residual { y = g.add(.add, [y, try b.shortcut.map { try lower($0, from: x, into: &g) } ?? x], name: b.name + ".residual") }
            } else {
                y = try b.shortcut.map { try lower($0, from: x, into: &g) } ?? x
            }
            if let adapter = b.adapter { y = g.add(.add, [y, try lower(adapter, from: x, into: &g)], name: b.name + ".adapter") }
            if let r = b.finalReLU { y = g.add(.activation(r.function), [y]) }
            return y
        case let gl as GraphLayer:
            // Inline: the sub-graph's values renumbered after this graph's.
            var map = [x]
            for node in gl.graph.nodes { map.append(g.add(node.op, node.inputs.map { map[$0] }, name: node.name)) }
            return map[gl.graph.outputs[0]]
        default:
            throw LearningError("\(type(of: layer)) has no graph op")
        }
    }
}
