/// Why an ONNX file was refused: a stable kind for callers, and a message naming the node, the op and what is
/// supported, so the user can tell which part of their export to change.
public struct ONNXError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Not a protobuf ModelProto (garbage, truncated), or a graph that breaks ONNX's own rules.
        case malformed
        /// Over one of `ONNXLimits`' bounds (file bytes, node count, parameter bytes, a dimension).
        case tooLarge
        case unsupportedOpset
        case unsupportedOp
        case unsupportedAttribute
        case unsupportedDataType
        /// Weights kept outside the file (`data_location = EXTERNAL`), or a segmented tensor.
        case externalData
        /// A shape the importer cannot fix: a dynamic dimension other than batch, a mismatch, a bad broadcast.
        case unsupportedShape
    }

    public var kind: Kind
    /// The node's name in the file (`#index` when the exporter left it empty), or nil for a graph-level error.
    public var node: String?
    /// The node's op type, or nil for a graph-level error.
    public var op: String?
    public var message: String

    public init(_ kind: Kind, node: String? = nil, op: String? = nil, _ message: String) {
        self.kind = kind
        self.node = node
        self.op = op
        self.message = message
    }

    public var description: String {
        switch (node, op) {
        case let (node?, op?): return "ONNX node '\(node)' (\(op)): \(message)"
        case let (nil, op?): return "ONNX \(op): \(message)"
        default: return "ONNX: \(message)"
        }
    }
}
