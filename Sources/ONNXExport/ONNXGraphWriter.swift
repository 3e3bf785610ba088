import Learning

/// Writes an engine `Graph` (a prefix of its nodes) with its parameters as a standalone ONNX ModelProto: opset 14,
/// IR version 7, one float input N×C×H×W with a symbolic batch dimension `N`, one output. Every parameter becomes an
/// initializer under its store name; batch norms stay `BatchNormalization` nodes in inference mode (running
/// statistics), which onnxruntime fuses into the convolutions itself.
struct ONNXGraphWriter {
    static let opset = 14
    static let irVersion = 7

    /// What to write: `graph`'s first `nodeCount` nodes, returning value `output`.
    struct Part {
        var graph: Graph
        var nodeCount: Int
        var output: Int
        /// Shape (C, H, W) of the graph's one input.
        var inputShape: [Int]
        var inputName: String
        var outputName: String
        var graphName: String
    }

    private var nodes = ProtobufWriter()
    private var initializers = ProtobufWriter()
    private var written: Set<String> = []
    private var constants = 0
    let store: ParameterStore

    init(store: ParameterStore) { self.store = store }

    enum Attribute {
        case int(Int), float(Float), ints([Int])
    }

    /// The bytes of the model file.
    static func model(_ part: Part, store: ParameterStore, metadata: [(String, String)], producerVersion: String) throws -> [UInt8] {
        var w = ONNXGraphWriter(store: store)
        let outputShape = try w.emit(part)
        var model = ProtobufWriter()
        model.int(1, irVersion)
        model.string(2, "fleetadapt")
        model.string(3, producerVersion)
        var graph = ProtobufWriter()
        graph.append(w.nodes)
        graph.string(2, part.graphName)
        graph.append(w.initializers)
        graph.message(11) { Self.valueInfo(&$0, name: part.inputName, shape: part.inputShape) }
        graph.message(12) { Self.valueInfo(&$0, name: part.outputName, shape: outputShape) }
        model.lengthDelimited(7, graph.bytes)
        model.message(8) { $0.string(1, ""); $0.int(2, opset) }
        for (key, value) in metadata { model.message(14) { $0.string(1, key); $0.string(2, value) } }
        return model.bytes
    }

    /// A float tensor N×dims with the batch dimension symbolic.
    static func valueInfo(_ v: inout ProtobufWriter, name: String, shape: [Int]) {
        v.string(1, name)
        v.message(2) { t in
            t.message(1) { tensor in
                tensor.int(1, 1)   // FLOAT
                tensor.message(2) { s in
                    s.message(1) { $0.string(2, "N") }
                    for d in shape { s.message(1) { $0.int(1, d) } }
                }
            }
        }
    }

    /// Emits the nodes and their initializers; returns the output's shape without the batch dimension.
    private mutating func emit(_ part: Part) throws -> [Int] {
        let graph = part.graph
        precondition(graph.inputCount == 1)
        var shapes: [[Int]] = [part.inputShape]
        func name(_ v: Int) -> String {
            if v == part.output { return part.outputName }
            if v == 0 { return part.inputName }
            return "v\(v)"
        }
        for (k, node) in graph.nodes.prefix(part.nodeCount).enumerated() {
            let v = graph.inputCount + k
            let x = node.inputs.map(name)
            let shape = shapes[node.inputs[0]]
            let out = name(v)
            let label = node.name.isEmpty ? "n\(k)" : "\(node.name)#\(k)"
            var y = shape
            switch node.op {
            case .conv(let c, let weight, let bias):
                guard shape.count == 3, shape[0] == c.inChannels else {
                    throw ONNXExportError("node \(label): convolution of \(c.inChannels) channels reads \(shape)")
                }
                let weightName = try parameter(weight)
                var inputs = [x[0], weightName]
                if let bias { inputs.append(try parameter(bias)) }
                write(label, "Conv", inputs, out, [
                    ("kernel_shape", .ints([c.kernel, c.kernel])), ("strides", .ints([c.stride, c.stride])),
                    ("pads", .ints([c.padding, c.padding, c.padding, c.padding])), ("group", .int(c.groups)),
                    ("dilations", .ints([1, 1])),
                ])
                let (h, w) = c.outputSize(shape[1], shape[2])
                y = [c.outChannels, h, w]
            case .batchNorm(let gamma, let beta, let mean, let variance, let eps, _):
                let scale = try parameter(gamma), shift = try parameter(beta)
                let m = try parameter(mean), vr = try parameter(variance)
                write(label, "BatchNormalization", [x[0], scale, shift, m, vr], out, [("epsilon", .float(eps))])
            case .activation(let f):
                switch f {
                case .relu: write(label, "Relu", x, out, [])
                case .clip(let lo, let hi):
                    let low = scalar(lo, "\(label).min"), high = scalar(hi, "\(label).max")
                    write(label, "Clip", [x[0], low, high], out, [])
                case .sigmoid: write(label, "Sigmoid", x, out, [])
                case .hardSigmoid(let alpha, let beta): write(label, "HardSigmoid", x, out, [("alpha", .float(alpha)), ("beta", .float(beta))])
                case .hardSwish: write(label, "HardSwish", x, out, [])
                }
            case .add, .mul:
                write(label, node.op == .add ? "Add" : "Mul", x, out, [])
                // A (C, 1, 1) operand broadcasts against a (C, H, W) one, first or second (squeeze-and-excitation).
                let other = shapes[node.inputs[1]]
                if other.reduce(1, *) > shape.reduce(1, *) { y = other }
            case .pool(let p):
                var attributes: [(String, Attribute)] = [
                    ("kernel_shape", .ints([p.kernel, p.kernel])), ("strides", .ints([p.stride, p.stride])),
                    ("pads", .ints([p.padding, p.padding, p.padding, p.padding])),
                ]
                if p.kind == .average { attributes.append(("count_include_pad", .int(p.countIncludePad ? 1 : 0))) }
                write(label, p.kind == .max ? "MaxPool" : "AveragePool", x, out, attributes)
                let (h, w) = p.outputSize(shape[1], shape[2])
                y = [shape[0], h, w]
            case .globalAveragePool:
                write(label, "GlobalAveragePool", x, out, [])
                y = [shape[0], 1, 1]
            case .flatten:
                write(label, "Flatten", x, out, [("axis", .int(1))])
                y = [shape.reduce(1, *)]
            case .gemm(let d, let weight, let bias):
                guard shape.count == 1, shape[0] == d.inFeatures else {
                    throw ONNXExportError("node \(label): a dense layer of \(d.inFeatures) features reads \(shape)")
                }
                let weightName = try parameter(weight)
                var inputs = [x[0], weightName]
                if let bias { inputs.append(try parameter(bias)) }
                write(label, "Gemm", inputs, out, [("transB", .int(1))])
                y = [d.outFeatures]
            case .upsample(let height, let width):
                // Nearest, source index ⌊o·in/out⌋ (the engine's integer arithmetic), as two Gathers over constant
                // indices: exact for any ratio, where Resize's float scales could round an index down.
                let (h, w) = (shape[1], shape[2])
                let rows = int64s((0..<height).map { $0 * h / height }, "\(label).rows")
                let cols = int64s((0..<width).map { $0 * w / width }, "\(label).cols")
                let mid = "\(out).rows"
                write(label + ".rows", "Gather", [x[0], rows], mid, [("axis", .int(2))])
                write(label + ".cols", "Gather", [mid, cols], out, [("axis", .int(3))])
                y = [shape[0], height, width]
            case .identity, .dropout: write(label, "Identity", x, out, [])
            case .reduceMean(let keepDims):
                write(label, "ReduceMean", x, out, [("axes", .ints([2, 3])), ("keepdims", .int(keepDims ? 1 : 0))])
                y = keepDims ? [shape[0], 1, 1] : [shape[0]]
            case .reshape(let perSample):
                guard perSample.reduce(1, *) == shape.reduce(1, *) else {
                    throw ONNXExportError("node \(label): a reshape to \(perSample) reads \(shape)")
                }
                // 0 keeps the batch dimension whatever it is at run time.
                let target = int64s([0] + perSample, "\(label).shape")
                write(label, "Reshape", [x[0], target], out, [])
                y = perSample
            }
            shapes.append(y)
        }
        return shapes[part.output]
    }

    private mutating func write(_ name: String, _ op: String, _ inputs: [String], _ output: String, _ attributes: [(String, Attribute)]) {
        nodes.message(1) { n in
            for i in inputs { n.string(1, i) }
            n.string(2, output)
            n.string(3, name)
            n.string(4, op)
            for (key, value) in attributes {
                n.message(5) { a in
                    a.string(1, key)
                    switch value {
                    case .int(let i): a.int(3, i); a.int(20, 2)
                    case .float(let f): a.float(2, f); a.int(20, 1)
                    case .ints(let list): a.packedInts(8, list); a.int(20, 7)
                    }
                }
            }
        }
    }

    /// The initializer of store entry `id` (written once), by its store name.
    private mutating func parameter(_ id: Int) throws -> String {
        let entry = store.entries[id]
        if written.insert(entry.name).inserted {
            let slab = entry.isBuffer ? store.buffers : store.values
            let values = Array(slab[entry.offset..<(entry.offset + entry.count)])
            guard values.allSatisfy(\.isFinite) else { throw ONNXExportError("parameter \(entry.name) holds a value that is not finite") }
            initializer(entry.name, dims: entry.shape, type: 1, raw: ProtobufWriter.littleEndian(values))
        }
        return entry.name
    }

    private mutating func scalar(_ value: Float, _ name: String) -> String {
        initializer(name, dims: [], type: 1, raw: ProtobufWriter.littleEndian([value]))
        return name
    }

    private mutating func int64s(_ values: [Int], _ name: String) -> String {
        initializer(name, dims: [values.count], type: 7, raw: ProtobufWriter.littleEndian(values))
        return name
    }

    private mutating func initializer(_ name: String, dims: [Int], type: Int, raw: [UInt8]) {
        initializers.message(5) { t in
            if !dims.isEmpty { t.packedInts(1, dims) }
            t.int(2, type)
            t.string(8, name)
            t.lengthDelimited(9, raw)
        }
    }
}

