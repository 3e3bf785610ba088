/// The importer's own typed graph: what was validated out of an ONNX file, with constants folded into plain
/// tensors, so the conversion to the engine never touches protobuf types or unchecked attributes.
public struct ONNXGraph: Sendable {
    public var irVersion: Int
    /// The default-domain opset the file was exported with (13...17).
    public var opset: Int
    /// `producer_name producer_version`, e.g. "pytorch 1.13.1".
    public var producer: String
    /// The one image input, N×C×H×W as the file declares it.
    public var input: ONNXInput
    /// The classifier's output: its name in the file and the tensor it resolves to after Identity/Dropout folding.
    public var output: ONNXOutput
    /// Float32 parameters and folded constants, by name.
    public var initializers: [String: ONNXTensor]
    /// Nodes in topological order; Constant, Identity and inference Dropout are folded away.
    public var nodes: [ONNXNode]
    /// Identity/Dropout outputs that were folded onto an activation: name in the file -> the tensor it equals.
    public var aliases: [String: String]
    /// Nodes folded away by op type (Constant, Identity, Dropout), so op counts add up to the file's.
    public var foldedNodes: [String: Int]
    /// False when the file's float initializers carry no data (a structure-only copy loaded with `weights: .optional`).
    public var hasWeights: Bool

    /// Float parameters of the network (elements of every initializer).
    public var parameterCount: Int { initializers.values.reduce(0) { $0 + $1.elementCount } }

    /// How many nodes of each op the graph holds after folding.
    public var opCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for node in nodes { counts[node.opType, default: 0] += 1 }
        return counts
    }

    /// The tensor a name of the file stands for once Identity/Dropout are folded.
    public func resolve(_ name: String) -> String { aliases[name] ?? name }

    /// The node that writes a tensor, if an activation.
    public func producer(of tensor: String) -> ONNXNode? { nodes.first { $0.output == tensor } }
}

public struct ONNXInput: Sendable, Equatable {
    public var name: String
    /// Four dimensions, N×C×H×W.
    public var dims: [ONNXDeclaredDim]
}

public struct ONNXOutput: Sendable, Equatable {
    /// The output's name in the file.
    public var name: String
    /// The node output it resolves to.
    public var tensor: String
}

/// A dimension as the file declares it.
public enum ONNXDeclaredDim: Sendable, Hashable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)
    case unknown

    public var description: String {
        switch self {
        case .fixed(let v): return "\(v)"
        case .symbolic(let s): return "'\(s)'"
        case .unknown: return "?"
        }
    }
}

/// A float32 tensor, row-major.
public struct ONNXTensor: Sendable, Equatable {
    public var dims: [Int]
    /// `elementCount` values, or empty when the file was a structure-only copy (`ONNXGraph.hasWeights` false).
    public var values: [Float]

    public init(dims: [Int], values: [Float]) {
        self.dims = dims
        self.values = values
    }

    public var elementCount: Int { dims.reduce(1, *) }
}

/// One node of the imported graph, its attributes validated and typed.
public struct ONNXNode: Sendable, Equatable {
    /// The node's name in the file, or `#index` (its position in the file) when the exporter left it empty.
    public var name: String
    /// The ONNX op type, e.g. "Conv".
    public var opType: String
    public var op: ONNXOp
    /// Tensor inputs, in ONNX order, minus those folded into `op` (weights of Conv/BatchNormalization/Gemm, Clip's
    /// limits, Reshape's shape). Each is the graph input, an earlier node's output or (for Add and Mul) an initializer.
    public var inputs: [String]
    public var output: String
}

/// The supported ops with their attributes. Parameter tensors are named here and live in `ONNXGraph.initializers`.
public enum ONNXOp: Sendable, Equatable {
    case conv(ONNXConv)
    case batchNormalization(ONNXBatchNorm)
    case relu
    case sigmoid
    case hardSwish
    /// y = max(0, min(1, alpha·x + beta)).
    case hardSigmoid(alpha: Float, beta: Float)
    /// Limits from Constant or initializer inputs; -inf / +inf where absent.
    case clip(min: Float, max: Float)
    case add
    case mul
    case maxPool(ONNXPool)
    case averagePool(ONNXPool, countIncludePad: Bool)
    case globalAveragePool
    /// axis 1: N×C×H×W -> N×(C·H·W).
    case flatten
    /// y = x·Wᵀ + b (transA 0, transB 1, alpha = beta = 1); W is (out, in).
    case gemm(weight: String, bias: String?)
    /// Mean over H and W (axes 2, 3).
    case reduceMean(keepDims: Bool)
    /// A static target shape, ONNX's 0 (copy) and -1 (infer) included; allowzero 0.
    case reshape(shape: [Int])

    /// The ops the importer accepts, as the file names them (Constant, Identity and Dropout are folded).
    public static let supportedOpTypes: [String] = [
        "Add", "AveragePool", "BatchNormalization", "Clip", "Constant", "Conv", "Dropout", "Flatten", "Gemm",
        "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "MaxPool", "Mul", "ReduceMean", "Relu",
        "Reshape", "Sigmoid",
    ]
}

/// A 2-D convolution, NCHW, weight (out, in/group, kH, kW), dilation 1.
public struct ONNXConv: Sendable, Equatable {
    public var weight: String
    public var bias: String?
    public var outChannels: Int
    public var inChannelsPerGroup: Int
    public var group: Int
    public var kernel: ONNXPair
    public var stride: ONNXPair
    public var pads: ONNXPads
}

public struct ONNXBatchNorm: Sendable, Equatable {
    public var scale: String
    public var bias: String
    public var mean: String
    public var variance: String
    public var channels: Int
    public var epsilon: Float
}

/// A 2-D pooling window, dilation 1, floor rounding (ceil_mode 0).
public struct ONNXPool: Sendable, Equatable {
    public var kernel: ONNXPair
    public var stride: ONNXPair
    public var pads: ONNXPads
}

public struct ONNXPair: Sendable, Equatable {
    public var h: Int
    public var w: Int
}

/// ONNX's `pads` for 2-D: [top, left, bottom, right].
public struct ONNXPads: Sendable, Equatable {
    public var top: Int
    public var left: Int
    public var bottom: Int
    public var right: Int
}
