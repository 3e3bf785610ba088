/// A dimension of an inferred shape: the dynamic batch axis, or a fixed size.
public enum ONNXDim: Sendable, Hashable, CustomStringConvertible {
    case batch
    case fixed(Int)

    public var description: String {
        switch self {
        case .batch: return "N"
        case .fixed(let v): return "\(v)"
        }
    }
}

/// The per-sample input the user declares (`--input CxHxW`), which fixes whatever the file leaves dynamic.
public struct ONNXInputSpec: Sendable, Equatable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// Parses "3x32x32" (also "3×32×32").
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(whereSeparator: { $0 == "x" || $0 == "×" })
        guard parts.count == 3, let c = Int(parts[0]), let h = Int(parts[1]), let w = Int(parts[2]),
              (1...4096).contains(c), (1...8192).contains(h), (1...8192).contains(w) else {
            throw ONNXError(.unsupportedShape, "input spec '\(text)' is not CxHxW with sizes in 1...4096 / 1...8192 (e.g. 3x32x32)")
        }
        self.init(channels: c, height: h, width: w)
    }

    public var description: String { "\(channels)x\(height)x\(width)" }
}

/// Every tensor's shape for one input spec, the batch axis kept symbolic.
public struct ONNXShapes: Sendable, Equatable {
    /// Activations and initializers by name; Identity/Dropout aliases resolve through the graph.
    public var byName: [String: [ONNXDim]]

    public subscript(name: String) -> [ONNXDim]? { byName[name] }
}

extension ONNXGraph {
    /// Infers the shape of every node's output for the input spec (nil: the file's own dims, which must then be
    /// fixed apart from batch). Errors name the node and op whose shapes do not fit.
    public func inferShapes(input spec: ONNXInputSpec?) throws -> ONNXShapes {
        var shapes: [String: [ONNXDim]] = [:]
        for (name, t) in initializers { shapes[name] = t.dims.map { .fixed($0) } }
        shapes[input.name] = try inputShape(spec)
        // A batch fixed in the file (e.g. 1) still stands for N; a Reshape that writes that literal at axis 0 keeps N.
        var fixedBatch: Int?
        if case .fixed(let b) = input.dims[0] { fixedBatch = b }
        for node in nodes {
            func fail(_ message: String) -> ONNXError { ONNXError(.unsupportedShape, node: node.name, op: node.opType, message) }
            let x = shapes[node.inputs[0]]!
            func fixed(_ d: ONNXDim) -> Int? { if case .fixed(let v) = d { return v } else { return nil } }
            func requireRank4() throws -> (ONNXDim, Int, Int, Int) {
                guard x.count == 4, let c = fixed(x[1]), let h = fixed(x[2]), let w = fixed(x[3]) else {
                    throw fail("input '\(node.inputs[0])' has shape \(x); an N×C×H×W tensor is expected")
                }
                return (x[0], c, h, w)
            }
            func window(_ size: Int, _ k: Int, _ s: Int, _ p0: Int, _ p1: Int, _ axis: String) throws -> Int {
                let span = size + p0 + p1
                guard span >= k else {
                    throw fail("the \(k)-wide kernel does not fit the padded \(axis) \(span) of input '\(node.inputs[0])' \(x)")
                }
                return (span - k) / s + 1
            }
            let out: [ONNXDim]
            switch node.op {
            case .conv(let conv):
                let (n, c, h, w) = try requireRank4()
                guard c == conv.inChannelsPerGroup * conv.group else {
                    throw fail("input '\(node.inputs[0])' has \(c) channels; weight '\(conv.weight)' expects "
                               + "\(conv.inChannelsPerGroup) × group \(conv.group)")
                }
                out = [n, .fixed(conv.outChannels),
                       .fixed(try window(h, conv.kernel.h, conv.stride.h, conv.pads.top, conv.pads.bottom, "height")),
                       .fixed(try window(w, conv.kernel.w, conv.stride.w, conv.pads.left, conv.pads.right, "width"))]
            case .maxPool(let pool), .averagePool(let pool, _):
                let (n, c, h, w) = try requireRank4()
                out = [n, .fixed(c),
                       .fixed(try window(h, pool.kernel.h, pool.stride.h, pool.pads.top, pool.pads.bottom, "height")),
                       .fixed(try window(w, pool.kernel.w, pool.stride.w, pool.pads.left, pool.pads.right, "width"))]
            case .batchNormalization(let bn):
                guard x.count >= 2, fixed(x[1]) == bn.channels else {
                    throw fail("input '\(node.inputs[0])' has shape \(x); \(bn.channels) channels on axis 1 are expected")
                }
                out = x
            case .relu, .sigmoid, .hardSwish, .hardSigmoid, .clip:
                out = x
            case .globalAveragePool:
                let (n, c, _, _) = try requireRank4()
                out = [n, .fixed(c), .fixed(1), .fixed(1)]
            case .reduceMean(let keep):
                let (n, c, _, _) = try requireRank4()
                out = keep ? [n, .fixed(c), .fixed(1), .fixed(1)] : [n, .fixed(c)]
            case .flatten:
                guard x.count >= 2 else { throw fail("input '\(node.inputs[0])' has shape \(x); rank ≥ 2 is expected") }
                guard !x.dropFirst().contains(.batch) else {
                    throw fail("input '\(node.inputs[0])' has the batch axis off axis 0: \(x)")
                }
                out = [x[0], .fixed(try checkedProduct(x.dropFirst(), fail: fail))]
            case .gemm(let weight, _):
                let w = initializers[weight]!.dims
                guard x.count == 2, fixed(x[1]) == w[1] else {
                    throw fail("input '\(node.inputs[0])' has shape \(x); [N, \(w[1])] is expected by weight '\(weight)' \(w)")
                }
                out = [x[0], .fixed(w[0])]
            case .add, .mul:
                out = try broadcast(x, shapes[node.inputs[1]]!, fail: fail)
            case .reshape(let target):
                out = try reshape(x, to: target, fixedBatch: fixedBatch, fail: fail)
            }
            shapes[node.output] = out
        }
        return ONNXShapes(byName: shapes)
    }

    func inputShape(_ spec: ONNXInputSpec?) throws -> [ONNXDim] {
        var dims: [ONNXDim] = [.batch]
        let wanted = spec.map { [$0.channels, $0.height, $0.width] }
        for (axis, what) in [(1, "channels"), (2, "height"), (3, "width")] {
            switch input.dims[axis] {
            case .fixed(let v):
                if let wanted, wanted[axis - 1] != v {
                    throw ONNXError(.unsupportedShape, "input '\(input.name)' declares \(what) \(v); the input spec "
                                    + "\(spec!) disagrees")
                }
                dims.append(.fixed(v))
            case .symbolic, .unknown:
                guard let wanted else {
                    throw ONNXError(.unsupportedShape, "input '\(input.name)' has a dynamic \(what) (\(input.dims[axis])); "
                                    + "give the input spec CxHxW (--input) to fix it")
                }
                dims.append(.fixed(wanted[axis - 1]))
            }
        }
        return dims
    }

    /// Numpy broadcasting, with the batch axis matching only itself or 1.
    func broadcast(_ a: [ONNXDim], _ b: [ONNXDim], fail: (String) -> ONNXError) throws -> [ONNXDim] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: ONNXDim.fixed(1), count: rank - a.count) + a
        let pb = Array(repeating: ONNXDim.fixed(1), count: rank - b.count) + b
        return try zip(pa, pb).map { x, y in
            switch (x, y) {
            case _ where x == y: return x
            case (.fixed(1), _): return y
            case (_, .fixed(1)): return x
            default: throw fail("shapes \(a) and \(b) do not broadcast")
            }
        }
    }

    /// A static Reshape: 0 copies the input's size, -1 takes the rest; the batch axis must stay a whole axis.
    func reshape(_ x: [ONNXDim], to target: [Int], fixedBatch: Int?, fail: (String) -> ONNXError) throws -> [ONNXDim] {
        var out: [ONNXDim?] = []
        for (i, t) in target.enumerated() {
            switch t {
            case 0:
                guard i < x.count else { throw fail("shape \(target) copies axis \(i) of \(x), which has no such axis") }
                out.append(x[i])
            case -1: out.append(nil)
            default:
                if i == 0, x.first == .batch, let fixedBatch, t == fixedBatch { out.append(.batch) } else { out.append(.fixed(t)) }
            }
        }
        let inputHasBatch = x.contains(.batch)
        let outputHasBatch = out.contains(.batch)
        let inner = try checkedProduct(x, fail: fail)
        let known = try checkedProduct(out.compactMap { $0 }, fail: fail)
        if let hole = out.firstIndex(where: { $0 == nil }) {
            if inputHasBatch && !outputHasBatch {
                guard known > 0, inner == known else {
                    throw fail("shape \(target) folds the batch axis of \(x) into other sizes; only a reshape that keeps N as its own axis is supported")
                }
                out[hole] = .batch
            } else {
                guard known > 0, inner % known == 0 else { throw fail("shape \(target) does not fit \(x)") }
                out[hole] = .fixed(inner / known)
            }
        } else {
            guard inputHasBatch == outputHasBatch, inner == known else {
                throw fail("shape \(target) does not fit \(x) (the batch axis N is dynamic; write it as 0 or -1)")
            }
        }
        return out.map { $0! }
    }

    /// The product of the fixed sizes (the batch axis counts 1), refused past 2^40 elements rather than overflowing.
    func checkedProduct<S: Sequence<ONNXDim>>(_ dims: S, fail: (String) -> ONNXError) throws -> Int {
        var product = 1
        for d in dims {
            guard case .fixed(let v) = d else { continue }
            let (p, overflow) = product.multipliedReportingOverflow(by: v)
            guard !overflow, p <= 1 << 40 else { throw fail("a tensor of more than 2^40 elements is not supported") }
            product = p
        }
        return product
    }
}
