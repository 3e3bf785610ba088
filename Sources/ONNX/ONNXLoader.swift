import Foundation
import SwiftProtobuf

/// Bounds on an untrusted ONNX file, checked before anything sized by the file is allocated.
public struct ONNXLimits: Sendable, Equatable {
    /// The whole file (checked before decoding; the protobuf decoder allocates at most this much).
    public var maxFileBytes: Int
    public var maxNodes: Int
    /// Float32 bytes of all initializers together, from their declared dims (before converting any).
    public var maxParameterBytes: Int
    /// Any one dimension of a tensor or the input.
    public var maxDimension: Int
    public var maxRank: Int

    public init(maxFileBytes: Int = 512 << 20, maxNodes: Int = 10_000, maxParameterBytes: Int = 512 << 20,
                maxDimension: Int = 1 << 20, maxRank: Int = 8) {
        self.maxFileBytes = maxFileBytes
        self.maxNodes = maxNodes
        self.maxParameterBytes = maxParameterBytes
        self.maxDimension = maxDimension
        self.maxRank = maxRank
    }
}

/// Turns the bytes of an ONNX file into a validated `ONNXGraph`, or refuses with an `ONNXError` naming the node, the
/// op and what is supported. Never a partial graph: anything it cannot represent exactly is an error.
public struct ONNXLoader: Sendable {
    /// Whether float initializers must carry their data. `.optional` reads a structure-only copy (data stripped,
    /// dims kept) for op/attribute/shape checks; such a graph has `hasWeights == false` and empty tensor values.
    public enum Weights: Sendable { case required, optional }

    public static let supportedOpsets: ClosedRange<Int> = 13...17

    public var limits: ONNXLimits
    public var weights: Weights

    public init(limits: ONNXLimits = ONNXLimits(), weights: Weights = .required) {
        self.limits = limits
        self.weights = weights
    }

    public func load(contentsOf url: URL) throws -> ONNXGraph {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        if let size = (attributes?[.size] as? NSNumber)?.intValue, size > limits.maxFileBytes {
            throw ONNXError(.tooLarge, "\(url.lastPathComponent) is \(size) bytes; the limit is \(limits.maxFileBytes)")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ONNXError(.malformed, "cannot read \(url.path)")
        }
        return try load(data)
    }

    public func load(_ bytes: Data) throws -> ONNXGraph {
        guard bytes.count <= limits.maxFileBytes else {
            throw ONNXError(.tooLarge, "the file is \(bytes.count) bytes; the limit is \(limits.maxFileBytes)")
        }
        guard !bytes.isEmpty else { throw ONNXError(.malformed, "the file is empty") }
        let model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: bytes)
        } catch {
            throw ONNXError(.malformed, "not a valid ONNX protobuf (truncated or not ONNX): \(error)")
        }
        var builder = try GraphBuilder(model: model, limits: limits, weights: weights)
        return try builder.build()
    }
}

/// One pass over the file's nodes in order, folding constants and aliases as it goes.
struct GraphBuilder {
    let model: Onnx_ModelProto
    let graph: Onnx_GraphProto
    let limits: ONNXLimits
    let weights: ONNXLoader.Weights
    let opset: Int

    var floats: [String: ONNXTensor] = [:]
    /// Non-float initializers and constants, kept as protos: only int64 ones are ever read (as Reshape's shape).
    var others: [String: Onnx_TensorProto] = [:]
    var activations: Set<String> = []
    var aliases: [String: String] = [:]
    var folded: [String: Int] = [:]
    var nodes: [ONNXNode] = []
    var weightless = false
    var parameterBytes = 0

    init(model: Onnx_ModelProto, limits: ONNXLimits, weights: ONNXLoader.Weights) throws {
        self.model = model
        self.limits = limits
        self.weights = weights
        guard model.hasGraph else { throw ONNXError(.malformed, "the model has no graph (truncated file?)") }
        graph = model.graph
        guard (3...10).contains(model.irVersion) else {
            throw ONNXError(.malformed, "IR version \(model.irVersion) is not supported (3...10)")
        }
        var defaultOpset: Int?
        for entry in model.opsetImport {
            if entry.domain == "" || entry.domain == "ai.onnx" {
                defaultOpset = Int(clamping: entry.version)
            } else if !entry.domain.isEmpty {
                // Other domains are allowed to be imported; a node that uses one is refused as an unsupported op.
                continue
            }
        }
        guard let defaultOpset else {
            throw ONNXError(.unsupportedOpset, "the model imports no default-domain (ai.onnx) opset (truncated file?)")
        }
        guard ONNXLoader.supportedOpsets.contains(defaultOpset) else {
            throw ONNXError(.unsupportedOpset, "opset \(defaultOpset) is not supported; export with opset_version "
                            + "13 to 17 (e.g. torch.onnx.export(..., opset_version=14))")
        }
        opset = defaultOpset
    }

    mutating func build() throws -> ONNXGraph {
        guard graph.node.count <= limits.maxNodes else {
            throw ONNXError(.tooLarge, "the graph has \(graph.node.count) nodes; the limit is \(limits.maxNodes)")
        }
        guard graph.sparseInitializer.isEmpty else {
            throw ONNXError(.unsupportedDataType, "sparse initializers are not supported")
        }
        try readInitializers()
        let input = try readInput()
        activations.insert(input.name)
        for (index, node) in graph.node.enumerated() {
            try add(node, index: index)
        }
        let output = try readOutput()
        return ONNXGraph(irVersion: Int(model.irVersion), opset: opset,
                         producer: [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " "),
                         input: input, output: output, initializers: floats, nodes: nodes, aliases: aliases,
                         foldedNodes: folded, hasWeights: !weightless)
    }

    // MARK: Initializers

    /// Checks every initializer's declared size against the limits, then converts the float ones.
    mutating func readInitializers() throws {
        var total = 0
        for tensor in graph.initializer {
            let count = try elementCount(tensor, what: "initializer '\(tensor.name)'")
            if tensor.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) {
                let (bytes, overflow) = count.multipliedReportingOverflow(by: 4)
                let (sum, overflow2) = total.addingReportingOverflow(bytes)
                guard !overflow, !overflow2, sum <= limits.maxParameterBytes else {
                    throw ONNXError(.tooLarge, "initializers declare more than \(limits.maxParameterBytes) bytes of "
                                    + "float32 parameters (at '\(tensor.name)')")
                }
                total = sum
            }
        }
        parameterBytes = total
        for tensor in graph.initializer {
            guard !tensor.name.isEmpty else { throw ONNXError(.malformed, "an initializer has no name") }
            guard floats[tensor.name] == nil, others[tensor.name] == nil else {
                throw ONNXError(.malformed, "two initializers are named '\(tensor.name)'")
            }
            if tensor.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) {
                floats[tensor.name] = try floatTensor(tensor, what: "initializer '\(tensor.name)'")
            } else {
                try checkInline(tensor, what: "initializer '\(tensor.name)'")
                others[tensor.name] = tensor
            }
        }
    }

    /// Elements a tensor declares, every dim range-checked and the product overflow-checked.
    func elementCount(_ tensor: Onnx_TensorProto, what: String) throws -> Int {
        guard tensor.dims.count <= limits.maxRank else {
            throw ONNXError(.tooLarge, "\(what) has rank \(tensor.dims.count); the limit is \(limits.maxRank)")
        }
        var count = 1
        for d in tensor.dims {
            guard d >= 0, d <= Int64(limits.maxDimension) else {
                throw ONNXError(.tooLarge, "\(what) declares dimension \(d); dimensions must be 0...\(limits.maxDimension)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow, product <= limits.maxParameterBytes / 4 else {
                throw ONNXError(.tooLarge, "\(what) declares dims \(tensor.dims), more than \(limits.maxParameterBytes / 4) elements")
            }
            count = product
        }
        return count
    }

    func checkInline(_ tensor: Onnx_TensorProto, what: String) throws {
        guard tensor.dataLocation != .external, tensor.externalData.isEmpty else {
            throw ONNXError(.externalData, "\(what) keeps its data in an external file; only self-contained models "
                            + "are supported (save with onnx.save_model(..., save_as_external_data=False))")
        }
        guard !tensor.hasSegment else { throw ONNXError(.externalData, "\(what) is segmented; not supported") }
    }

    /// A float32 tensor, its data length checked against its dims before any conversion.
    mutating func floatTensor(_ tensor: Onnx_TensorProto, what: String) throws -> ONNXTensor {
        try checkInline(tensor, what: what)
        let count = try elementCount(tensor, what: what)
        let dims = tensor.dims.map { Int($0) }
        var values: [Float]
        if !tensor.rawData.isEmpty {
            guard tensor.floatData.isEmpty, tensor.rawData.count == count * 4 else {
                throw ONNXError(.malformed, "\(what) declares dims \(dims) (\(count * 4) bytes) but carries "
                                + "\(tensor.rawData.count) bytes of data")
            }
            values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { out in
                tensor.rawData.withUnsafeBytes { raw in
                    for i in 0..<count {
                        out.storeBytes(of: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian,
                                       toByteOffset: 4 * i, as: UInt32.self)
                    }
                }
            }
        } else if !tensor.floatData.isEmpty {
            guard tensor.floatData.count == count else {
                throw ONNXError(.malformed, "\(what) declares dims \(dims) (\(count) values) but carries "
                                + "\(tensor.floatData.count) values")
            }
            values = tensor.floatData
        } else if count == 0 {
            values = []
        } else {
            guard weights == .optional else {
                throw ONNXError(.malformed, "\(what) declares dims \(dims) but carries no data (a weightless copy?)")
            }
            weightless = true
            return ONNXTensor(dims: dims, values: [])
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw ONNXError(.malformed, "\(what) holds a non-finite value (\(values[bad])) at index \(bad)")
        }
        return ONNXTensor(dims: dims, values: values)
    }

    // MARK: Input and output

    func readInput() throws -> ONNXInput {
        let inputs = graph.input.filter { floats[$0.name] == nil && others[$0.name] == nil }
        guard inputs.count == 1 else {
            throw ONNXError(.unsupportedShape, "the graph has \(inputs.count) inputs (\(inputs.map(\.name))); an image "
                            + "classifier with exactly one N×C×H×W float32 input is supported")
        }
        let info = inputs[0]
        guard !info.name.isEmpty else { throw ONNXError(.malformed, "the graph input has no name") }
        guard case .tensorType(let type)? = info.type.value else {
            throw ONNXError(.unsupportedDataType, "input '\(info.name)' is not a tensor; a float32 N×C×H×W tensor is supported")
        }
        guard type.elemType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
            throw ONNXError(.unsupportedDataType, "input '\(info.name)' has data type \(dataTypeName(type.elemType)); "
                            + "only float32 (FLOAT) is supported")
        }
        guard type.hasShape, type.shape.dim.count == 4 else {
            let rank = type.hasShape ? "rank \(type.shape.dim.count)" : "no shape"
            throw ONNXError(.unsupportedShape, "input '\(info.name)' has \(rank); a rank-4 N×C×H×W input is supported")
        }
        let dims: [ONNXDeclaredDim] = try type.shape.dim.map { dim in
            switch dim.value {
            case .dimValue(let v)?:
                guard v >= 1, v <= Int64(limits.maxDimension) else {
                    throw ONNXError(.unsupportedShape, "input '\(info.name)' declares dimension \(v); dimensions must be "
                                    + "1...\(limits.maxDimension)")
                }
                return .fixed(Int(v))
            case .dimParam(let p)?: return p.isEmpty ? .unknown : .symbolic(p)
            case nil: return .unknown
            }
        }
        return ONNXInput(name: info.name, dims: dims)
    }

    func readOutput() throws -> ONNXOutput {
        guard graph.output.count == 1 else {
            throw ONNXError(.unsupportedShape, "the graph has \(graph.output.count) outputs; a classifier with exactly "
                            + "one output (its logits) is supported")
        }
        let info = graph.output[0]
        if case .tensorType(let type)? = info.type.value,
           type.elemType != Int32(Onnx_TensorProto.DataType.float.rawValue) {
            throw ONNXError(.unsupportedDataType, "output '\(info.name)' has data type \(dataTypeName(type.elemType)); "
                            + "only float32 (FLOAT) is supported")
        }
        let tensor = resolve(info.name)
        guard nodes.contains(where: { $0.output == tensor }) else {
            throw ONNXError(.malformed, "output '\(info.name)' is not computed by any node")
        }
        return ONNXOutput(name: info.name, tensor: tensor)
    }

    func resolve(_ name: String) -> String { aliases[name] ?? name }
}

/// ONNX's name of a TensorProto.DataType value, for messages.
func dataTypeName(_ raw: Int32) -> String {
    let names: [Int32: String] = [0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16",
                                  6: "INT32", 7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE",
                                  12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"]
    return names[raw] ?? "type \(raw)"
}
