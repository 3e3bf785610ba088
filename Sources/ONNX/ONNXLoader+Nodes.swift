import SwiftProtobuf

/// Attributes each op may carry; any other is refused, so a new exporter option is never silently ignored.
let allowedAttributes: [String: Set<String>] = [
    "Conv": ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"],
    "BatchNormalization": ["epsilon", "momentum", "training_mode"],
    "Relu": [], "Sigmoid": [], "HardSwish": [], "Add": [], "Mul": [], "GlobalAveragePool": [], "Clip": [],
    "Identity": [],
    "HardSigmoid": ["alpha", "beta"],
    "MaxPool": ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"],
    "AveragePool": ["auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"],
    "Flatten": ["axis"],
    "Gemm": ["alpha", "beta", "transA", "transB"],
    "Constant": ["value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string",
                 "value_strings"],
    "ReduceMean": ["axes", "keepdims"],
    "Reshape": ["allowzero"],
    "Dropout": ["seed"],
]

/// What a node input name refers to.
enum InputRef {
    case activation(String)
    case float(String, ONNXTensor)
    case other(String, Onnx_TensorProto)
}

extension GraphBuilder {
    mutating func add(_ proto: Onnx_NodeProto, index: Int) throws {
        var node = NodeContext(proto: proto, name: proto.name.isEmpty ? "#\(index)" : proto.name)
        guard proto.domain.isEmpty || proto.domain == "ai.onnx" else {
            throw node.error(.unsupportedOp, "ops of domain '\(proto.domain)' are not supported; supported: the "
                             + "default domain's \(ONNXOp.supportedOpTypes.joined(separator: ", "))")
        }
        guard ONNXOp.supportedOpTypes.contains(proto.opType) else {
            throw node.error(.unsupportedOp, "op \(proto.opType) is not supported; supported: "
                             + ONNXOp.supportedOpTypes.joined(separator: ", "))
        }
        node.attributes = try node.readAttributes(allowed: allowedAttributes[proto.opType] ?? [])
        guard let output = proto.output.first, !output.isEmpty else {
            throw node.error(.malformed, "the node has no output")
        }
        for name in proto.output where !name.isEmpty {
            guard !isDefined(name) else { throw node.error(.malformed, "output '\(name)' is already defined") }
        }
        let extraOutputs = proto.output.dropFirst().filter { !$0.isEmpty }
        if proto.opType != "Dropout", !extraOutputs.isEmpty {
            throw node.error(.unsupportedAttribute, "a second output (\(extraOutputs.joined(separator: ", "))) is not "
                             + "supported; only the first output of \(proto.opType) is")
        }

        let op: ONNXOp
        var inputs: [String]
        switch proto.opType {
        case "Constant":
            try foldConstant(node, output: output)
            return
        case "Identity":
            try node.expectInputs(1...1)
            switch try lookup(node, 0) {
            case .activation(let a): aliases[output] = a; activations.insert(output)
            case .float(_, let t): floats[output] = t
            case .other(_, let t): others[output] = t
            }
            folded["Identity", default: 0] += 1
            return
        case "Dropout":
            try foldDropout(node, output: output)
            return
        case "Conv":
            try node.expectInputs(2...3)
            inputs = [try activation(node, 0)]
            op = .conv(try conv(node))
        case "BatchNormalization":
            try node.expectInputs(5...5)
            inputs = [try activation(node, 0)]
            op = .batchNormalization(try batchNorm(node))
        case "Relu", "Sigmoid", "HardSwish", "GlobalAveragePool":
            try node.expectInputs(1...1)
            inputs = [try activation(node, 0)]
            op = ["Relu": .relu, "Sigmoid": .sigmoid, "HardSwish": .hardSwish,
                  "GlobalAveragePool": .globalAveragePool][proto.opType]!
        case "HardSigmoid":
            try node.expectInputs(1...1)
            inputs = [try activation(node, 0)]
            op = .hardSigmoid(alpha: try node.float("alpha", default: 0.2), beta: try node.float("beta", default: 0.5))
        case "Clip":
            try node.expectInputs(1...3)
            inputs = [try activation(node, 0)]
            let low = try optionalScalar(node, 1) ?? -.infinity
            let high = try optionalScalar(node, 2) ?? .infinity
            guard !low.isNaN, !high.isNaN, low <= high else {
                throw node.error(.unsupportedAttribute, "limits [\(low), \(high)] are not an interval")
            }
            op = .clip(min: low, max: high)
        case "Add", "Mul":
            try node.expectInputs(2...2)
            inputs = try (0..<2).map { i in
                switch try lookup(node, i) {
                case .activation(let a): return a
                case .float(let name, _): return name
                case .other(let name, let t):
                    throw node.error(.unsupportedDataType, "input '\(name)' has data type \(dataTypeName(t.dataType)); "
                                     + "only float32 is supported")
                }
            }
            guard inputs.contains(where: { activations.contains($0) }) else {
                throw node.error(.unsupportedOp, "both operands are constants; constant arithmetic is not supported")
            }
            op = proto.opType == "Add" ? .add : .mul
        case "MaxPool":
            try node.expectInputs(1...1)
            inputs = [try activation(node, 0)]
            op = .maxPool(try pool(node))
        case "AveragePool":
            try node.expectInputs(1...1)
            inputs = [try activation(node, 0)]
            let include = try node.int("count_include_pad", default: 0)
            guard include == 0 || include == 1 else {
                throw node.error(.unsupportedAttribute, "count_include_pad \(include) must be 0 or 1")
            }
            op = .averagePool(try pool(node), countIncludePad: include == 1)
        case "Flatten":
            try node.expectInputs(1...1)
            inputs = [try activation(node, 0)]
            let axis = try node.int("axis", default: 1)
            guard axis == 1 else {
                throw node.error(.unsupportedAttribute, "axis \(axis) is not supported; only axis 1 (torch.flatten(x, 1))")
            }
            op = .flatten
        case "Gemm":
            try node.expectInputs(2...3)
            inputs = [try activation(node, 0)]
            op = try gemm(node)
        case "ReduceMean":
            try node.expectInputs(1...1)
            inputs = [try activation(node, 0)]
            guard let axes = try node.ints("axes"),
                  Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3], axes.count == 2 else {
                throw node.error(.unsupportedAttribute, "axes \(String(describing: try node.ints("axes"))) are not "
                                 + "supported; only the mean over H and W (axes [2, 3]) of an N×C×H×W tensor")
            }
            let keep = try node.int("keepdims", default: 1)
            guard keep == 0 || keep == 1 else { throw node.error(.unsupportedAttribute, "keepdims \(keep) must be 0 or 1") }
            op = .reduceMean(keepDims: keep == 1)
        case "Reshape":
            try node.expectInputs(2...2)
            inputs = [try activation(node, 0)]
            let allowZero = try node.int("allowzero", default: 0)
            guard allowZero == 0 else {
                throw node.error(.unsupportedAttribute, "allowzero \(allowZero) is not supported; only 0")
            }
            op = .reshape(shape: try reshapeTarget(node))
        default:
            throw node.error(.unsupportedOp, "op \(proto.opType) is not supported")
        }
        activations.insert(output)
        nodes.append(ONNXNode(name: node.name, opType: proto.opType, op: op, inputs: inputs, output: output))
    }

    func isDefined(_ name: String) -> Bool {
        activations.contains(name) || floats[name] != nil || others[name] != nil || aliases[name] != nil
    }

    /// What input `i` of the node names; an error when it is absent or not defined by an earlier node.
    func lookup(_ node: NodeContext, _ i: Int) throws -> InputRef {
        let raw = node.proto.input[i]
        guard !raw.isEmpty else { throw node.error(.malformed, "input \(i) is empty") }
        let name = resolve(raw)
        if activations.contains(name) { return .activation(name) }
        if let t = floats[name] { return .float(name, t) }
        if let t = others[name] { return .other(name, t) }
        throw node.error(.malformed, "input '\(raw)' is not defined by the graph input, an initializer or an earlier node")
    }

    /// Input `i` as an activation (computed from the graph input).
    func activation(_ node: NodeContext, _ i: Int) throws -> String {
        switch try lookup(node, i) {
        case .activation(let a): return a
        case .float(let name, _), .other(let name, _):
            throw node.error(.unsupportedShape, "input '\(name)' is a constant; \(node.proto.opType) on a constant is "
                             + "not supported, only on a tensor computed from the graph input")
        }
    }

    /// Input `i` as a float32 parameter with the given rank, or nil when optional and absent.
    func parameter(_ node: NodeContext, _ i: Int, what: String, required: Bool = true) throws -> (String, ONNXTensor)? {
        if i >= node.proto.input.count || node.proto.input[i].isEmpty {
            if required { throw node.error(.malformed, "the \(what) input is missing") }
            return nil
        }
        switch try lookup(node, i) {
        case .float(let name, let t): return (name, t)
        case .activation(let name):
            throw node.error(.unsupportedShape, "the \(what) '\(name)' is computed at run time; only an initializer is supported")
        case .other(let name, let t):
            throw node.error(.unsupportedDataType, "the \(what) '\(name)' has data type \(dataTypeName(t.dataType)); "
                             + "only float32 (FLOAT) is supported")
        }
    }

    /// A float scalar from a constant input (Clip's limits), or nil when the input is absent.
    func optionalScalar(_ node: NodeContext, _ i: Int) throws -> Float? {
        guard let (name, t) = try parameter(node, i, what: i == 1 ? "min" : "max", required: false) else { return nil }
        guard t.elementCount == 1 else {
            throw node.error(.unsupportedShape, "'\(name)' has dims \(t.dims); a scalar limit is supported")
        }
        guard let v = t.values.first else {
            throw node.error(.malformed, "'\(name)' carries no data; Clip's limits must be stored in the file")
        }
        return v
    }

    func conv(_ node: NodeContext) throws -> ONNXConv {
        let autoPad = try node.string("auto_pad", default: "NOTSET")
        guard autoPad == "NOTSET" else {
            throw node.error(.unsupportedAttribute, "auto_pad \(autoPad) is not supported; only NOTSET with explicit "
                             + "pads (PyTorch's export)")
        }
        let (wName, w) = try parameter(node, 1, what: "weight")!
        guard w.dims.count == 4, w.dims.allSatisfy({ $0 >= 1 }) else {
            throw node.error(.unsupportedShape, "weight '\(wName)' has dims \(w.dims); a 2-D convolution's (out, in/group, kH, kW) is supported")
        }
        if let dilations = try node.ints("dilations"), dilations.contains(where: { $0 != 1 }) {
            throw node.error(.unsupportedAttribute, "dilations \(dilations) are not supported; only 1")
        }
        if let kernel = try node.ints("kernel_shape"), kernel != [w.dims[2], w.dims[3]] {
            throw node.error(.malformed, "kernel_shape \(kernel) disagrees with weight '\(wName)' dims \(w.dims)")
        }
        let group = try node.int("group", default: 1)
        guard group >= 1, w.dims[0] % group == 0 else {
            throw node.error(.unsupportedAttribute, "group \(group) does not divide the \(w.dims[0]) output channels")
        }
        var biasName: String?
        if let (bName, b) = try parameter(node, 2, what: "bias", required: false) {
            guard b.dims == [w.dims[0]] else {
                throw node.error(.unsupportedShape, "bias '\(bName)' has dims \(b.dims); [\(w.dims[0])] is expected")
            }
            biasName = bName
        }
        return ONNXConv(weight: wName, bias: biasName, outChannels: w.dims[0], inChannelsPerGroup: w.dims[1],
                        group: group, kernel: ONNXPair(h: w.dims[2], w: w.dims[3]),
                        stride: try strides(node), pads: try pads(node))
    }

    func strides(_ node: NodeContext) throws -> ONNXPair {
        let s = try node.ints("strides") ?? [1, 1]
        guard s.count == 2, s.allSatisfy({ (1...limits.maxDimension).contains($0) }) else {
            throw node.error(.unsupportedAttribute, "strides \(s) are not supported; two strides ≥ 1 (2-D)")
        }
        return ONNXPair(h: s[0], w: s[1])
    }

    func pads(_ node: NodeContext) throws -> ONNXPads {
        let p = try node.ints("pads") ?? [0, 0, 0, 0]
        guard p.count == 4, p.allSatisfy({ (0...limits.maxDimension).contains($0) }) else {
            throw node.error(.unsupportedAttribute, "pads \(p) are not supported; four pads ≥ 0 [top, left, bottom, right]")
        }
        return ONNXPads(top: p[0], left: p[1], bottom: p[2], right: p[3])
    }

    func pool(_ node: NodeContext) throws -> ONNXPool {
        let autoPad = try node.string("auto_pad", default: "NOTSET")
        guard autoPad == "NOTSET" else {
            throw node.error(.unsupportedAttribute, "auto_pad \(autoPad) is not supported; only NOTSET with explicit pads")
        }
        let ceil = try node.int("ceil_mode", default: 0)
        guard ceil == 0 else {
            throw node.error(.unsupportedAttribute, "ceil_mode \(ceil) is not supported; only 0 (PyTorch's ceil_mode=False)")
        }
        if let dilations = try node.ints("dilations"), dilations.contains(where: { $0 != 1 }) {
            throw node.error(.unsupportedAttribute, "dilations \(dilations) are not supported; only 1")
        }
        guard let k = try node.ints("kernel_shape"), k.count == 2,
              k.allSatisfy({ (1...limits.maxDimension).contains($0) }) else {
            throw node.error(.unsupportedAttribute, "kernel_shape \(String(describing: try node.ints("kernel_shape"))) "
                             + "is not supported; a 2-D kernel [kH, kW] is required")
        }
        return ONNXPool(kernel: ONNXPair(h: k[0], w: k[1]), stride: try strides(node), pads: try pads(node))
    }

    func batchNorm(_ node: NodeContext) throws -> ONNXBatchNorm {
        let training = try node.int("training_mode", default: 0)
        guard training == 0 else {
            throw node.error(.unsupportedAttribute, "training_mode \(training) is not supported; only 0 (export the "
                             + "model after model.eval())")
        }
        let epsilon = try node.float("epsilon", default: 1e-5)
        guard epsilon.isFinite, epsilon >= 0 else { throw node.error(.unsupportedAttribute, "epsilon \(epsilon) must be ≥ 0") }
        var names: [String] = []
        var channels: Int?
        for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            let (name, t) = try parameter(node, i, what: what)!
            guard t.dims.count == 1, channels == nil || t.dims[0] == channels else {
                throw node.error(.unsupportedShape, "the \(what) '\(name)' has dims \(t.dims); one [C] vector per input is expected")
            }
            channels = t.dims[0]
            names.append(name)
        }
        return ONNXBatchNorm(scale: names[0], bias: names[1], mean: names[2], variance: names[3],
                             channels: channels ?? 0, epsilon: epsilon)
    }

    func gemm(_ node: NodeContext) throws -> ONNXOp {
        let transA = try node.int("transA", default: 0), transB = try node.int("transB", default: 0)
        let alpha = try node.float("alpha", default: 1), beta = try node.float("beta", default: 1)
        guard transA == 0, transB == 1, alpha == 1, beta == 1 else {
            throw node.error(.unsupportedAttribute, "transA \(transA), transB \(transB), alpha \(alpha), beta \(beta) "
                             + "are not supported; only nn.Linear's transA 0, transB 1, alpha 1, beta 1")
        }
        let (wName, w) = try parameter(node, 1, what: "weight")!
        guard w.dims.count == 2, w.dims.allSatisfy({ $0 >= 1 }) else {
            throw node.error(.unsupportedShape, "weight '\(wName)' has dims \(w.dims); (out, in) is expected")
        }
        var biasName: String?
        if let (bName, b) = try parameter(node, 2, what: "bias", required: false) {
            guard b.dims == [w.dims[0]] || b.dims == [1, w.dims[0]] else {
                throw node.error(.unsupportedShape, "bias '\(bName)' has dims \(b.dims); [\(w.dims[0])] is expected")
            }
            biasName = bName
        }
        return .gemm(weight: wName, bias: biasName)
    }

    func reshapeTarget(_ node: NodeContext) throws -> [Int] {
        let raw = node.proto.input[1]
        guard case .other(let name, let t) = try lookup(node, 1), t.dataType == Int32(Onnx_TensorProto.DataType.int64.rawValue) else {
            throw node.error(.unsupportedShape, "the shape '\(raw)' must be a constant int64 tensor (a static Reshape); "
                             + "shapes computed at run time are not supported")
        }
        let values = try int64Values(t, node: node, what: "shape '\(name)'")
        guard t.dims.count == 1, values.count <= limits.maxRank,
              values.allSatisfy({ $0 >= -1 && $0 <= Int64(limits.maxDimension) }),
              values.filter({ $0 == -1 }).count <= 1 else {
            throw node.error(.unsupportedShape, "shape \(values) is not supported; a 1-D shape of at most "
                             + "\(limits.maxRank) sizes ≥ 0 with at most one -1")
        }
        return values.map { Int($0) }
    }

    func int64Values(_ t: Onnx_TensorProto, node: NodeContext, what: String) throws -> [Int64] {
        let count = try elementCount(t, what: what)
        if !t.rawData.isEmpty {
            guard t.rawData.count == count * 8 else {
                throw node.error(.malformed, "\(what) declares \(count) int64 values but carries \(t.rawData.count) bytes")
            }
            return (0..<count).map { i in
                t.rawData.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
            }
        }
        guard t.int64Data.count == count else {
            throw node.error(.malformed, "\(what) declares \(count) int64 values but carries \(t.int64Data.count)")
        }
        return t.int64Data
    }

    mutating func foldConstant(_ node: NodeContext, output: String) throws {
        try node.expectInputs(0...0)
        let attrs = node.attributes
        guard attrs.count == 1, let (key, attr) = attrs.first else {
            throw node.error(.malformed, "a Constant needs exactly one value attribute, it has \(attrs.count)")
        }
        switch key {
        case "value":
            try node.expect(attr, .tensor)
            if attr.t.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) {
                var tensor = try floatTensor(attr.t, what: "constant '\(output)'")
                if tensor.values.isEmpty && tensor.elementCount > 0 {  // a weightless copy keeps Constants whole
                    throw node.error(.malformed, "constant '\(output)' carries no data")
                }
                tensor.dims = attr.t.dims.map { Int($0) }
                floats[output] = tensor
            } else {
                try checkInline(attr.t, what: "constant '\(output)'")
                _ = try elementCount(attr.t, what: "constant '\(output)'")
                others[output] = attr.t
            }
        case "value_float":
            try node.expect(attr, .float)
            guard attr.f.isFinite else { throw node.error(.malformed, "value_float \(attr.f) is not finite") }
            floats[output] = ONNXTensor(dims: [], values: [attr.f])
        case "value_floats":
            try node.expect(attr, .floats)
            guard attr.floats.allSatisfy(\.isFinite) else { throw node.error(.malformed, "value_floats holds a non-finite value") }
            floats[output] = ONNXTensor(dims: [attr.floats.count], values: attr.floats)
        case "value_int", "value_ints":
            try node.expect(attr, key == "value_int" ? .int : .ints)
            var t = Onnx_TensorProto()
            t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
            t.int64Data = key == "value_int" ? [attr.i] : attr.ints
            t.dims = key == "value_int" ? [] : [Int64(attr.ints.count)]
            others[output] = t
        default:
            throw node.error(.unsupportedAttribute, "\(key) is not supported; a Constant's value, value_float(s) or value_int(s) is")
        }
        folded["Constant", default: 0] += 1
    }

    /// Inference Dropout is the identity; its mask output must stay unused and training_mode (if given) false.
    mutating func foldDropout(_ node: NodeContext, output: String) throws {
        try node.expectInputs(1...3)
        if node.proto.input.count == 3, !node.proto.input[2].isEmpty {
            guard case .other(_, let t) = try lookup(node, 2), t.dataType == Int32(Onnx_TensorProto.DataType.bool.rawValue),
                  t.rawData.allSatisfy({ $0 == 0 }), t.int32Data.allSatisfy({ $0 == 0 }) else {
                throw node.error(.unsupportedAttribute, "training_mode must be a constant false; only inference Dropout is supported")
            }
        }
        if node.proto.output.count > 1, !node.proto.output[1].isEmpty {
            let mask = node.proto.output[1]
            let used = graph.node.contains { $0.input.contains(mask) } || graph.output.contains { $0.name == mask }
            guard !used else {
                throw node.error(.unsupportedAttribute, "the mask output '\(mask)' is used; only inference Dropout (no mask) is supported")
            }
        }
        guard case .activation(let a) = try lookup(node, 0) else {
            throw node.error(.unsupportedShape, "Dropout of a constant is not supported")
        }
        aliases[output] = a
        activations.insert(output)
        folded["Dropout", default: 0] += 1
    }
}

/// A node under validation: its proto, display name and attributes by name, with typed readers.
struct NodeContext {
    let proto: Onnx_NodeProto
    let name: String
    var attributes: [String: Onnx_AttributeProto] = [:]

    init(proto: Onnx_NodeProto, name: String) {
        self.proto = proto
        self.name = name
    }

    func error(_ kind: ONNXError.Kind, _ message: String) -> ONNXError {
        ONNXError(kind, node: name, op: proto.opType, message)
    }

    func readAttributes(allowed: Set<String>) throws -> [String: Onnx_AttributeProto] {
        var out: [String: Onnx_AttributeProto] = [:]
        for attr in proto.attribute {
            guard allowed.contains(attr.name) else {
                let list = allowed.isEmpty ? "none" : allowed.sorted().joined(separator: ", ")
                throw error(.unsupportedAttribute, "attribute '\(attr.name)' is not supported; supported: \(list)")
            }
            guard attr.refAttrName.isEmpty else {
                throw error(.unsupportedAttribute, "attribute '\(attr.name)' refers to a function attribute; not supported")
            }
            guard out.updateValue(attr, forKey: attr.name) == nil else {
                throw error(.malformed, "attribute '\(attr.name)' appears twice")
            }
        }
        return out
    }

    func expectInputs(_ range: ClosedRange<Int>) throws {
        guard range.contains(proto.input.count) else {
            throw error(.malformed, "\(proto.input.count) inputs; \(proto.opType) takes \(range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)")")
        }
    }

    func expect(_ attr: Onnx_AttributeProto, _ type: Onnx_AttributeProto.AttributeType) throws {
        guard attr.type == type else {
            throw error(.malformed, "attribute '\(attr.name)' has type \(attr.type); \(type) is expected")
        }
    }

    func int(_ key: String, default value: Int) throws -> Int {
        guard let attr = attributes[key] else { return value }
        try expect(attr, .int)
        return Int(clamping: attr.i)
    }

    func ints(_ key: String) throws -> [Int]? {
        guard let attr = attributes[key] else { return nil }
        try expect(attr, .ints)
        return attr.ints.map { Int(clamping: $0) }
    }

    func float(_ key: String, default value: Float) throws -> Float {
        guard let attr = attributes[key] else { return value }
        try expect(attr, .float)
        guard attr.f.isFinite else { throw error(.unsupportedAttribute, "attribute '\(key)' is \(attr.f)") }
        return attr.f
    }

    func string(_ key: String, default value: String) throws -> String {
        guard let attr = attributes[key] else { return value }
        try expect(attr, .string)
        return String(decoding: attr.s, as: UTF8.self)
    }
}
