import Foundation
import Testing
@testable import ONNX

/// The loader against PyTorch's real exports (fixtures) and hand-built files for what no exporter writes.
@Suite struct ONNXLoaderTests {
    /// Every node of the file is accounted for: kept with its op, or folded (Constant, Identity, Dropout).
    static func expectCountsMatch(_ graph: ONNXGraph, _ file: String) throws {
        var counts = graph.opCounts
        for (op, n) in graph.foldedNodes { counts[op, default: 0] += n }
        let expected = try Fixtures.opCounts(file)
        #expect(!expected.isEmpty)
        #expect(counts == expected, "\(file)")
    }

    @Test(arguments: Fixtures.trained)
    func trainedExportLoadsWithWeights(file: String) throws {
        let graph = try ONNXLoader().load(contentsOf: Fixtures.url(file))
        #expect(graph.hasWeights)
        #expect(graph.opset == 14)
        #expect(graph.producer.hasPrefix("pytorch 1.13"))
        #expect(graph.input.name == "input")
        #expect(graph.input.dims == [.symbolic("batch"), .fixed(3), .fixed(32), .fixed(32)])
        #expect(graph.output.name == "logits")
        try Self.expectCountsMatch(graph, file)
        let parameters = try #require(Fixtures.int(try Fixtures.entry(file)["parameters"]))
        #expect(graph.parameterCount >= parameters)
        for node in graph.nodes {
            if case .conv(let conv) = node.op {
                let w = try #require(graph.initializers[conv.weight])
                #expect(w.values.count == w.elementCount)
                #expect(w.dims == [conv.outChannels, conv.inChannelsPerGroup, conv.kernel.h, conv.kernel.w])
            }
        }
        let bn = graph.opCounts["BatchNormalization"] ?? 0
        if file.contains(".preserve.") {
            #expect(bn > 0)
        } else {
            // PyTorch folds every BN into its conv: none left, and every conv has a bias.
            #expect(bn == 0)
            for node in graph.nodes {
                if case .conv(let conv) = node.op { #expect(conv.bias != nil, "\(node.name)") }
            }
        }
    }

    @Test func mobilenetTinyHasDepthwiseConvsReLU6AndResiduals() throws {
        let graph = try ONNXLoader().load(contentsOf: Fixtures.url("mobilenet_v2_tiny.eval.onnx"))
        let depthwise = graph.nodes.filter {
            if case .conv(let c) = $0.op { return c.group > 1 && c.group == c.outChannels && c.inChannelsPerGroup == 1 }
            return false
        }
        #expect(depthwise.count == 8)  // one per inverted residual
        let clips = graph.nodes.compactMap { node -> ONNXOp? in if case .clip = node.op { return node.op } else { return nil } }
        #expect(!clips.isEmpty)
        #expect(clips.allSatisfy { $0 == .clip(min: 0, max: 6) })
        #expect(graph.opCounts["Add"] == 3)
        #expect(graph.foldedNodes["Constant", default: 0] >= 2)
    }

    @Test(arguments: Fixtures.zoo)
    func torchvisionModelLoadsWeightless(file: String) throws {
        let graph = try ONNXLoader(weights: .optional).load(contentsOf: Fixtures.url(file))
        #expect(!graph.hasWeights)
        #expect(graph.opset == 14)
        try Self.expectCountsMatch(graph, file)
        // The same file with weights required is refused, naming an initializer that carries no data.
        let error = try #require(throws: ONNXError.self) { try ONNXLoader().load(contentsOf: Fixtures.url(file)) }
        #expect(error.kind == .malformed)
        #expect(error.message.contains("carries no data"))
    }

    @Test func refusedUnsupportedOpNamesNodeAndOp() throws {
        let entry = try Fixtures.entry("refused_leakyrelu.onnx")
        let error = try #require(throws: ONNXError.self) {
            try ONNXLoader().load(contentsOf: Fixtures.url("refused_leakyrelu.onnx"))
        }
        #expect(error.kind == .unsupportedOp)
        #expect(error.node == entry["node"] as? String)
        #expect(error.op == "LeakyRelu")
        #expect(error.description.contains("'\(entry["node"] as? String ?? "?")' (LeakyRelu)"))
        #expect(error.message.contains("supported: Add, AveragePool, BatchNormalization"))
    }

    @Test func refusedDilation() throws {
        let entry = try Fixtures.entry("refused_dilation2.onnx")
        let error = try #require(throws: ONNXError.self) {
            try ONNXLoader().load(contentsOf: Fixtures.url("refused_dilation2.onnx"))
        }
        #expect(error.kind == .unsupportedAttribute)
        #expect(error.node == entry["node"] as? String)
        #expect(error.op == "Conv")
        #expect(error.message.contains("dilations [2, 2] are not supported; only 1"))
    }

    @Test func refusedFloat64Input() throws {
        let error = try #require(throws: ONNXError.self) {
            try ONNXLoader().load(contentsOf: Fixtures.url("refused_float64.onnx"))
        }
        #expect(error.kind == .unsupportedDataType)
        #expect(error.message.contains("DOUBLE"))
        #expect(error.message.contains("only float32"))
    }

    @Test func refusedOpset11() throws {
        let error = try #require(throws: ONNXError.self) {
            try ONNXLoader().load(contentsOf: Fixtures.url("refused_opset11.onnx"))
        }
        #expect(error.kind == .unsupportedOpset)
        #expect(error.message.contains("opset 11 is not supported"))
    }

    @Test func refusedTruncatedFile() throws {
        let error = try #require(throws: ONNXError.self) {
            try ONNXLoader().load(contentsOf: Fixtures.url("refused_truncated.onnx"))
        }
        #expect(error.kind == .malformed)
    }

    /// Untrusted input: every strict prefix of a real export is an error (never a crash, never a partial graph).
    @Test func everyPrefixOfAFileIsRefused() throws {
        let bytes = try Fixtures.data("dynamic_spatial.onnx")
        _ = try ONNXLoader().load(bytes)
        for length in 0..<bytes.count {
            #expect(throws: ONNXError.self) { try ONNXLoader().load(bytes.prefix(length)) }
        }
    }

    /// Random byte flips in a real export: the loader throws or returns a graph, it never traps.
    @Test func flippedBytesNeverCrash() throws {
        let original = try Fixtures.data("se_resnet.eval.onnx")
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<(1 + next() % 4) {
                let i = next() % bytes.count
                bytes[bytes.startIndex + i] = UInt8(truncatingIfNeeded: next())
            }
            if let graph = try? ONNXLoader().load(bytes) {
                _ = try? graph.inferShapes(input: ONNXInputSpec(channels: 3, height: 32, width: 32))
            }
        }
        for seed in 0..<50 {
            state = UInt64(seed)
            let garbage = Data((0..<(64 + next() % 4096)).map { _ in UInt8(truncatingIfNeeded: next()) })
            #expect(throws: ONNXError.self) { try ONNXLoader().load(garbage) }
        }
    }

    @Test func limitsAreCheckedBeforeAllocation() throws {
        let bytes = try Fixtures.data("se_resnet.eval.onnx")
        let nodes = try #require(throws: ONNXError.self) { try ONNXLoader(limits: ONNXLimits(maxNodes: 10)).load(bytes) }
        #expect(nodes.kind == .tooLarge)
        #expect(nodes.message.contains("the limit is 10"))
        let params = try #require(throws: ONNXError.self) {
            try ONNXLoader(limits: ONNXLimits(maxParameterBytes: 1000)).load(bytes)
        }
        #expect(params.kind == .tooLarge)
        let file = try #require(throws: ONNXError.self) { try ONNXLoader(limits: ONNXLimits(maxFileBytes: 1000)).load(bytes) }
        #expect(file.kind == .tooLarge)

        // Dims whose product overflows (or is absurd) are refused without allocating.
        var m = Synth.baseModel()
        m.graph.initializer[0] = Synth.tensor("conv.w", [], fill: 0)
        m.graph.initializer[0].dims = [1 << 20, 1 << 20, 1 << 20, 1 << 20]
        let huge = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(huge.kind == .tooLarge)
        m.graph.initializer[0].dims = [-1, 3, 3, 3]
        #expect(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
    }

    @Test func dataLengthMustMatchDims() throws {
        var m = Synth.baseModel()
        m.graph.initializer[0].floatData = []
        m.graph.initializer[0].rawData = Data(count: 4 * 107)
        let error = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(error.kind == .malformed)
        #expect(error.message.contains("initializer 'conv.w' declares dims [4, 3, 3, 3] (432 bytes) but carries 428 bytes"))

        m = Synth.baseModel()
        m.graph.initializer[1].floatData = [1, .nan, 2, 3]
        let nan = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(nan.message.contains("non-finite"))
    }

    @Test func rawDataIsLittleEndianFloat32() throws {
        var m = Synth.baseModel()
        let values: [Float] = [1.5, -2.25, 3.0, 0.125]
        m.graph.initializer[1].floatData = []
        m.graph.initializer[1].rawData = Data(values.flatMap { v -> [UInt8] in
            let b = v.bitPattern.littleEndian
            return (0..<4).map { UInt8(truncatingIfNeeded: b >> (8 * $0)) }
        })
        let graph = try ONNXLoader().load(Synth.bytes(m))
        #expect(graph.initializers["conv.b"]?.values == values)
    }

    @Test func externalDataIsRefused() throws {
        var m = Synth.baseModel()
        m.graph.initializer[0].dataLocation = .external
        var entry = Onnx_StringStringEntryProto()
        entry.key = "location"
        entry.value = "weights.bin"
        m.graph.initializer[0].externalData = [entry]
        let error = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(error.kind == .externalData)
        #expect(error.message.contains("conv.w"))
    }

    /// Attributes the engine cannot honour are refused naming node, op and what is supported.
    @Test func unsupportedAttributesNameTheNode() throws {
        func refuse(_ edit: (inout Onnx_ModelProto) -> Void) throws -> ONNXError {
            var m = Synth.baseModel()
            edit(&m)
            return try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        }
        let autoPad = try refuse { $0.graph.node[0].attribute.append(Synth.attr("auto_pad", string: "SAME_UPPER")) }
        #expect(autoPad.kind == .unsupportedAttribute && autoPad.node == "/conv/Conv" && autoPad.op == "Conv")
        #expect(autoPad.message.contains("auto_pad SAME_UPPER is not supported; only NOTSET"))

        let transB = try refuse { $0.graph.node[4].attribute = [Synth.attr("transB", int: 0)] }
        #expect(transB.node == "/fc/Gemm" && transB.message.contains("only nn.Linear's transA 0, transB 1"))

        let unknown = try refuse { $0.graph.node[1].attribute = [Synth.attr("slope", int: 1)] }
        #expect(unknown.node == "/relu/Relu" && unknown.message.contains("attribute 'slope' is not supported; supported: none"))

        let axis = try refuse { $0.graph.node[3].attribute = [Synth.attr("axis", int: 2)] }
        #expect(axis.op == "Flatten" && axis.message.contains("only axis 1"))

        let stride = try refuse { $0.graph.node[0].attribute[2] = Synth.attr("strides", ints: [1, 1, 1]) }
        #expect(stride.message.contains("strides [1, 1, 1]"))

        let kernel = try refuse { $0.graph.node[0].attribute[0] = Synth.attr("kernel_shape", ints: [5, 5]) }
        #expect(kernel.message.contains("disagrees with weight 'conv.w'"))

        let group = try refuse { $0.graph.node[0].attribute[4] = Synth.attr("group", int: 3) }
        #expect(group.message.contains("group 3 does not divide"))

        let domain = try refuse { $0.graph.node[1].domain = "com.microsoft" }
        #expect(domain.kind == .unsupportedOp && domain.message.contains("com.microsoft"))
    }

    @Test func batchNormMustBeInferenceMode() throws {
        var m = Synth.baseModel()
        m.graph.initializer += ["bn.s", "bn.b", "bn.m", "bn.v"].map { Synth.tensor($0, [4], fill: 1) }
        m.graph.node.insert(Synth.node("BatchNormalization", ["c", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"],
                                       name: "/bn/BatchNormalization", [Synth.attr("training_mode", int: 1)]), at: 1)
        m.graph.node[2].input = ["bn"]
        let error = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(error.node == "/bn/BatchNormalization")
        #expect(error.message.contains("training_mode 1 is not supported; only 0"))
        m.graph.node[1].attribute = []
        let graph = try ONNXLoader().load(Synth.bytes(m))
        #expect(graph.nodes[1].op == .batchNormalization(ONNXBatchNorm(scale: "bn.s", bias: "bn.b", mean: "bn.m",
                                                                          variance: "bn.v", channels: 4, epsilon: 1e-5)))
    }

    @Test func graphStructureIsChecked() throws {
        var m = Synth.baseModel()
        m.graph.node[1].input = ["nowhere"]
        let undefined = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(undefined.kind == .malformed && undefined.node == "/relu/Relu" && undefined.message.contains("'nowhere'"))

        m = Synth.baseModel()
        m.graph.node.swapAt(1, 2)  // not topological
        #expect(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }

        m = Synth.baseModel()
        m.graph.node[2].output = ["c"]  // SSA violated
        let twice = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(twice.message.contains("already defined"))

        m = Synth.baseModel()
        m.graph.node[0].input[1] = "input"  // a weight computed at run time
        let dynamicWeight = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(dynamicWeight.message.contains("only an initializer is supported"))

        m = Synth.baseModel()
        m.graph.input.append(Synth.valueInfo("second", [Synth.dim(1)]))
        #expect(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }

        m = Synth.baseModel()
        m.graph.input[0] = Synth.valueInfo("input", [Synth.dim("batch"), Synth.dim(3), Synth.dim(8), Synth.dim(8)], type: .float16)
        let half = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(half.kind == .unsupportedDataType && half.message.contains("FLOAT16"))

        m = Synth.baseModel()
        m.graph.initializer[0].dataType = Int32(Onnx_TensorProto.DataType.double.rawValue)
        m.graph.initializer[0].floatData = []
        m.graph.initializer[0].doubleData = Array(repeating: 0.1, count: 108)
        let double = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(double.kind == .unsupportedDataType && double.node == "/conv/Conv" && double.message.contains("DOUBLE"))

        m = Synth.baseModel()
        m.opsetImport[0].version = 18
        #expect(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
    }

    /// Constant, Identity and Dropout fold away: Clip's limits become attributes, aliases resolve to the activation.
    @Test func constantsAndIdentitiesFold() throws {
        var m = Synth.baseModel()
        var low = Synth.tensor("", [], fill: 0)
        low.name = ""
        let high = Synth.tensor("", [], fill: 6)
        m.graph.node[1] = Synth.node("Clip", ["c", "lo", "hi"], ["r0"], name: "/relu6/Clip")
        m.graph.node.insert(contentsOf: [
            Synth.node("Constant", [], ["lo"], name: "/Constant", [Synth.attr("value", tensor: low)]),
            Synth.node("Constant", [], ["hi"], name: "/Constant_1", [Synth.attr("value", tensor: high)]),
        ], at: 1)
        m.graph.node.insert(contentsOf: [
            Synth.node("Identity", ["r0"], ["r1"], name: "/Identity"),
            Synth.node("Dropout", ["r1"], ["r"], name: "/Dropout"),
        ], at: 4)
        m.graph.initializer.append(Synth.tensor("shared", [10]))
        m.graph.node.append(Synth.node("Identity", ["shared"], ["shared2"], name: "/Identity_1"))
        m.graph.node[m.graph.node.count - 2].output = ["g"]
        m.graph.node.append(Synth.node("Add", ["g", "shared2"], ["logits"], name: "/Add"))
        let graph = try ONNXLoader().load(Synth.bytes(m))
        #expect(graph.foldedNodes == ["Constant": 2, "Identity": 2, "Dropout": 1])
        #expect(graph.nodes.map(\.opType) == ["Conv", "Clip", "GlobalAveragePool", "Flatten", "Gemm", "Add"])
        #expect(graph.nodes[1].op == .clip(min: 0, max: 6))
        #expect(graph.nodes[2].inputs == ["r0"])  // through Identity and Dropout
        #expect(graph.resolve("r") == "r0")
        #expect(graph.initializers["shared2"]?.dims == [10])
        #expect(graph.nodes[5].inputs == ["g", "shared2"])
        let shapes = try graph.inferShapes(input: nil)
        #expect(shapes["logits"] == [.batch, .fixed(10)])
    }

    @Test func dropoutMaskMustBeUnused() throws {
        var m = Synth.baseModel()
        m.graph.node.insert(Synth.node("Dropout", ["r0"], ["r", "mask"], name: "/Dropout"), at: 2)
        m.graph.node[1].output = ["r0"]
        _ = try ONNXLoader().load(Synth.bytes(m))
        m.graph.output.append(Synth.valueInfo("mask", []))
        let error = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(m)) }
        #expect(error.node == "/Dropout" && error.message.contains("mask"))
    }
}
