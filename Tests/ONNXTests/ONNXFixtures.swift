import Foundation
import SwiftProtobuf
@testable import ONNX

/// The committed fixtures of deploy/tools/make_onnx_fixtures.py, found next to this file (CI builds from a clone,
/// so the source tree is there); a missing fixture is a failure, never a skip.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func data(_ name: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: url(name).path) else {
            throw Missing(description: "fixture \(url(name).path) is missing: run deploy/tools/make_onnx_fixtures.py")
        }
        return data
    }

    /// fixtures.json: per file, what the script (PyTorch and ONNX's own shape inference) found.
    static func manifest() throws -> [String: [String: Any]] {
        guard let root = try JSONSerialization.jsonObject(with: try data("fixtures.json")) as? [String: Any],
              let files = root["files"] as? [String: [String: Any]] else {
            throw Missing(description: "fixtures.json has no files table")
        }
        return files
    }

    static func entry(_ name: String) throws -> [String: Any] {
        guard let e = try manifest()[name] else { throw Missing(description: "fixtures.json has no entry \(name)") }
        return e
    }

    /// A JSON number (NSNumber from JSONSerialization, or a bridged Int).
    static func int(_ value: Any?) -> Int? {
        (value as? NSNumber)?.intValue ?? (value as? Int)
    }

    static func opCounts(_ name: String) throws -> [String: Int] {
        ((try entry(name)["opCounts"] as? [String: Any]) ?? [:]).compactMapValues { int($0) }
    }

    /// The shapes ONNX's shape inference gave, "batch" (the dynamic axis) as `.batch`.
    static func shapes(_ name: String) throws -> [String: [ONNXDim]] {
        guard let raw = try entry(name)["shapes"] as? [String: [Any]] else { return [:] }
        return raw.mapValues { dims in
            dims.map { d in (d is String) ? ONNXDim.batch : int(d).map { ONNXDim.fixed($0) } ?? .batch }
        }
    }

    static func files(kind: String) throws -> [String] {
        try manifest().filter { ($0.value["kind"] as? String) == kind }.map(\.key).sorted()
    }

    static let trained = ["se_resnet.preserve.onnx", "se_resnet.eval.onnx",
                          "mobilenet_v2_tiny.preserve.onnx", "mobilenet_v2_tiny.eval.onnx"]
    static let zoo = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small"].flatMap {
        ["\($0).preserve.weightless.onnx", "\($0).eval.weightless.onnx"]
    }
}

/// Small ONNX models built in the test with the generated protobuf types, for cases no exporter writes.
enum Synth {
    static func tensor(_ name: String, _ dims: [Int], fill: Float = 0.1) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map { Int64($0) }
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.floatData = Array(repeating: fill, count: dims.reduce(1, *))
        return t
    }

    static func int64Tensor(_ name: String, _ values: [Int64]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = [Int64(values.count)]
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.int64Data = values
        return t
    }

    static func attr(_ name: String, ints: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = ints.map { Int64($0) }
        return a
    }

    static func attr(_ name: String, int: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(int)
        return a
    }

    static func attr(_ name: String, string: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(string.utf8)
        return a
    }

    static func attr(_ name: String, tensor: Onnx_TensorProto) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .tensor
        a.t = tensor
        return a
    }

    static func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String,
                     _ attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = name
        n.input = inputs
        n.output = outputs
        n.attribute = attributes
        return n
    }

    static func valueInfo(_ name: String, _ dims: [Onnx_TensorShapeProto.Dimension],
                          type: Onnx_TensorProto.DataType = .float) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = Int32(type.rawValue)
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims
        t.shape = shape
        v.type.tensorType = t
        return v
    }

    static func dim(_ v: Int) -> Onnx_TensorShapeProto.Dimension {
        var d = Onnx_TensorShapeProto.Dimension()
        d.dimValue = Int64(v)
        return d
    }

    static func dim(_ p: String) -> Onnx_TensorShapeProto.Dimension {
        var d = Onnx_TensorShapeProto.Dimension()
        d.dimParam = p
        return d
    }

    /// input [batch, 3, 8, 8] -> conv (3x3 pad 1, 4 out) -> relu -> GAP -> flatten -> gemm (10) -> logits.
    static func baseModel() -> Onnx_ModelProto {
        var m = Onnx_ModelProto()
        m.irVersion = 7
        m.producerName = "test"
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 14
        m.opsetImport = [opset]
        var g = Onnx_GraphProto()
        g.input = [valueInfo("input", [dim("batch"), dim(3), dim(8), dim(8)])]
        g.output = [valueInfo("logits", [dim("batch"), dim(10)])]
        g.initializer = [tensor("conv.w", [4, 3, 3, 3]), tensor("conv.b", [4]), tensor("fc.w", [10, 4]), tensor("fc.b", [10])]
        g.node = [
            node("Conv", ["input", "conv.w", "conv.b"], ["c"], name: "/conv/Conv",
                 [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1]), attr("strides", ints: [1, 1]),
                  attr("dilations", ints: [1, 1]), attr("group", int: 1)]),
            node("Relu", ["c"], ["r"], name: "/relu/Relu"),
            node("GlobalAveragePool", ["r"], ["p"], name: "/pool/GlobalAveragePool"),
            node("Flatten", ["p"], ["f"], name: "/Flatten", [attr("axis", int: 1)]),
            node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], name: "/fc/Gemm", [attr("transB", int: 1)]),
        ]
        m.graph = g
        return m
    }

    static func bytes(_ m: Onnx_ModelProto) throws -> Data { try m.serializedBytes() }
}
