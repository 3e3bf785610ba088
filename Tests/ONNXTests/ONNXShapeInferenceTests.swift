import Foundation
import Testing
@testable import ONNX

/// Shape inference against what ONNX's own inference gave in the fixture script, for every tensor of every file.
@Suite struct ONNXShapeInferenceTests {
    static let spec = ONNXInputSpec(channels: 3, height: 32, width: 32)

    static func loadAny(_ file: String) throws -> ONNXGraph {
        try ONNXLoader(weights: file.contains("weightless") ? .optional : .required).load(contentsOf: Fixtures.url(file))
    }

    @Test(arguments: Fixtures.trained + Fixtures.zoo)
    func everyTensorMatchesONNXShapeInference(file: String) throws {
        let graph = try Self.loadAny(file)
        let shapes = try graph.inferShapes(input: Self.spec)
        let expected = try Fixtures.shapes(file)
        #expect(expected.count > graph.nodes.count / 2, "\(file): too few reference shapes")
        for (name, dims) in expected {
            let ours = shapes[graph.resolve(name)]
            #expect(ours == dims, "\(file): tensor '\(name)'")
        }
        // Every node output has a shape, and the logits are [N, classes] as PyTorch printed.
        for node in graph.nodes { #expect(shapes[node.output] != nil, "\(node.name)") }
        let torch = try #require(try Fixtures.entry(file)["torchOutputShape"] as? [Any])
        let classes = try #require(Fixtures.int(torch.last))
        #expect(shapes[graph.output.tensor] == [.batch, .fixed(classes)])
    }

    /// At 3x32x32 resnet18's layer4 and the late mobilenet_v2 stages run at 1x1.
    @Test func oneByOneSpatialShapes() throws {
        let resnet = try Self.loadAny("resnet18.eval.weightless.onnx")
        let shapes = try resnet.inferShapes(input: Self.spec)
        let layer4 = resnet.nodes.filter { $0.name.hasPrefix("/layer4/") && $0.opType == "Conv" }
        #expect(!layer4.isEmpty)
        for node in layer4 { #expect(shapes[node.output] == [.batch, .fixed(512), .fixed(1), .fixed(1)], "\(node.name)") }

        let mobilenet = try Self.loadAny("mobilenet_v2.preserve.weightless.onnx")
        let mshapes = try mobilenet.inferShapes(input: Self.spec)
        let oneByOne = mobilenet.nodes.filter { node in
            node.opType == "Conv" && mshapes[node.output]?.suffix(2) == [.fixed(1), .fixed(1)]
        }
        #expect(oneByOne.count >= 10)
    }

    /// The reference tensors the conversion step will compare against: inputs fit the graph, logits its output.
    @Test(arguments: ["se_resnet", "mobilenet_v2_tiny"])
    func referenceTensorsFitTheGraph(model: String) throws {
        let blob = try Fixtures.data("\(model).reference.safetensors")
        let headerLength = blob.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength > 0 && headerLength < blob.count - 8)
        let header = try #require(try JSONSerialization.jsonObject(with: blob.subdata(in: 8..<(8 + headerLength)))
            as? [String: [String: Any]])
        func shape(_ name: String) -> [Int]? { (header[name]?["shape"] as? [Any])?.compactMap { Fixtures.int($0) } }
        #expect(shape("input") == [8, 3, 32, 32])
        #expect(shape("logits") == [8, 10])
        #expect(shape("labels") == [8])
        #expect(blob.count == 8 + headerLength + 4 * (8 * 3 * 32 * 32 + 8 * 10 + 8))
        for mode in ["preserve", "eval"] {
            let graph = try ONNXLoader().load(contentsOf: Fixtures.url("\(model).\(mode).onnx"))
            #expect(try graph.inferShapes(input: Self.spec)[graph.output.tensor] == [.batch, .fixed(10)])
        }
    }

    @Test func dynamicSpatialNeedsTheSpec() throws {
        let graph = try ONNXLoader().load(contentsOf: Fixtures.url("dynamic_spatial.onnx"))
        #expect(graph.input.dims == [.symbolic("batch"), .fixed(3), .symbolic("height"), .symbolic("width")])
        let error = try #require(throws: ONNXError.self) { try graph.inferShapes(input: nil) }
        #expect(error.kind == .unsupportedShape)
        #expect(error.message.contains("dynamic height ('height')"))
        #expect(error.message.contains("--input"))
        for size in [32, 64, 1] {
            let shapes = try graph.inferShapes(input: ONNXInputSpec(channels: 3, height: size, width: size))
            #expect(shapes[graph.output.tensor] == [.batch, .fixed(10)])
            #expect(shapes[graph.nodes[0].output] == [.batch, .fixed(4), .fixed(size), .fixed(size)])
        }
    }

    @Test func specMustAgreeWithFixedDims() throws {
        let graph = try ONNXLoader().load(contentsOf: Fixtures.url("se_resnet.eval.onnx"))
        let error = try #require(throws: ONNXError.self) {
            try graph.inferShapes(input: ONNXInputSpec(channels: 3, height: 64, width: 64))
        }
        #expect(error.message.contains("declares height 32; the input spec 3x64x64 disagrees"))
        #expect(try graph.inferShapes(input: nil)[graph.output.tensor] == [.batch, .fixed(10)])
    }

    @Test func specParsing() throws {
        #expect(try ONNXInputSpec(parsing: "3x32x32") == ONNXInputSpec(channels: 3, height: 32, width: 32))
        #expect(try ONNXInputSpec(parsing: "1×28×28") == ONNXInputSpec(channels: 1, height: 28, width: 28))
        for bad in ["3x32", "0x32x32", "3x32x32x1", "axbxc", "3x-1x32", "3x99999x32", ""] {
            #expect(throws: ONNXError.self) { try ONNXInputSpec(parsing: bad) }
        }
    }

    /// A kernel larger than its padded input is an error naming the node, never a zero or negative size.
    @Test func kernelLargerThanInputIsRefused() throws {
        var symbolic = Synth.baseModel()
        symbolic.graph.input[0] = Synth.valueInfo("input", [Synth.dim("batch"), Synth.dim("c"), Synth.dim(8), Synth.dim(8)])
        let graph = try ONNXLoader().load(Synth.bytes(symbolic))
        let error = try #require(throws: ONNXError.self) {
            try graph.inferShapes(input: ONNXInputSpec(channels: 4, height: 8, width: 8))
        }
        #expect(error.node == "/conv/Conv" && error.message.contains("4 channels"))

        var m = Synth.baseModel()
        m.graph.node[0].attribute[1] = Synth.attr("pads", ints: [0, 0, 0, 0])
        m.graph.input[0] = Synth.valueInfo("input", [Synth.dim("batch"), Synth.dim(3), Synth.dim(2), Synth.dim(2)])
        let small = try ONNXLoader().load(Synth.bytes(m))
        let fit = try #require(throws: ONNXError.self) { try small.inferShapes(input: nil) }
        #expect(fit.node == "/conv/Conv" && fit.message.contains("does not fit"))
    }

    /// Squeeze-and-excitation's N×C×H×W × N×C×1×1 broadcasts; a batch against a fixed size other than 1 does not.
    @Test func broadcastRules() throws {
        let graph = try ONNXLoader().load(Synth.bytes(Synth.baseModel()))
        let fail = { (m: String) in ONNXError(.unsupportedShape, m) }
        let x: [ONNXDim] = [.batch, .fixed(4), .fixed(8), .fixed(8)]
        #expect(try graph.broadcast(x, [.batch, .fixed(4), .fixed(1), .fixed(1)], fail: fail) == x)
        #expect(try graph.broadcast(x, [.fixed(4), .fixed(1), .fixed(1)], fail: fail) == x)
        #expect(throws: ONNXError.self) { try graph.broadcast(x, [.fixed(2), .fixed(4), .fixed(1), .fixed(1)], fail: fail) }
        #expect(throws: ONNXError.self) { try graph.broadcast(x, [.batch, .fixed(3), .fixed(1), .fixed(1)], fail: fail) }
    }

    /// The accepted ops no fixture writes: AveragePool, ReduceMean over H,W, HardSigmoid's attributes.
    @Test func averagePoolReduceMeanHardSigmoid() throws {
        func model(_ pool: Onnx_NodeProto, reduce: [Onnx_AttributeProto]) -> Onnx_ModelProto {
            var m = Synth.baseModel()
            var alpha = Onnx_AttributeProto()
            alpha.name = "alpha"
            alpha.type = .float
            alpha.f = 1.0 / 6
            m.graph.node[1] = Synth.node("HardSigmoid", ["c"], ["h"], name: "/HardSigmoid", [alpha])
            m.graph.node[2] = pool
            m.graph.node[3] = Synth.node("ReduceMean", ["a"], ["f"], name: "/ReduceMean", reduce)
            return m
        }
        let pool = Synth.node("AveragePool", ["h"], ["a"], name: "/AveragePool",
                              [Synth.attr("kernel_shape", ints: [2, 2]), Synth.attr("strides", ints: [2, 2]),
                               Synth.attr("pads", ints: [0, 0, 0, 0]), Synth.attr("count_include_pad", int: 1)])
        let graph = try ONNXLoader().load(Synth.bytes(model(pool, reduce: [Synth.attr("axes", ints: [-2, -1]),
                                                                           Synth.attr("keepdims", int: 0)])))
        #expect(graph.nodes[1].op == .hardSigmoid(alpha: 1.0 / 6, beta: 0.5))
        #expect(graph.nodes[2].op == .averagePool(ONNXPool(kernel: ONNXPair(h: 2, w: 2), stride: ONNXPair(h: 2, w: 2),
                                                           pads: ONNXPads(top: 0, left: 0, bottom: 0, right: 0)),
                                                  countIncludePad: true))
        #expect(graph.nodes[3].op == .reduceMean(keepDims: false))
        let shapes = try graph.inferShapes(input: nil)
        #expect(shapes["a"] == [.batch, .fixed(4), .fixed(4), .fixed(4)])
        #expect(shapes["f"] == [.batch, .fixed(4)])
        #expect(shapes["logits"] == [.batch, .fixed(10)])

        let channels = try #require(throws: ONNXError.self) {
            try ONNXLoader().load(Synth.bytes(model(pool, reduce: [Synth.attr("axes", ints: [1])])))
        }
        #expect(channels.node == "/ReduceMean" && channels.message.contains("only the mean over H and W"))
        var ceil = pool
        ceil.attribute.append(Synth.attr("ceil_mode", int: 1))
        let ceilError = try #require(throws: ONNXError.self) {
            try ONNXLoader().load(Synth.bytes(model(ceil, reduce: [Synth.attr("axes", ints: [2, 3])])))
        }
        #expect(ceilError.node == "/AveragePool" && ceilError.message.contains("ceil_mode 1 is not supported"))
    }

    /// A static Reshape keeps N as its own axis: [0, -1] and [-1, C] work, a literal that folds N away is refused.
    @Test func staticReshape() throws {
        func model(_ target: [Int64]) -> Onnx_ModelProto {
            var m = Synth.baseModel()
            m.graph.initializer.append(Synth.int64Tensor("shape", target))
            m.graph.node[3] = Synth.node("Reshape", ["p", "shape"], ["f"], name: "/Reshape")
            return m
        }
        for target: [Int64] in [[0, -1], [-1, 4], [0, 4]] {
            let graph = try ONNXLoader().load(Synth.bytes(model(target)))
            #expect(graph.nodes[3].op == .reshape(shape: target.map { Int($0) }))
            #expect(try graph.inferShapes(input: nil)["f"] == [.batch, .fixed(4)], "\(target)")
        }
        for target: [Int64] in [[-1], [1, 4], [2, -1], [4, 0]] {
            let graph = try ONNXLoader().load(Synth.bytes(model(target)))
            let error = try #require(throws: ONNXError.self) { try graph.inferShapes(input: nil) }
            #expect(error.node == "/Reshape", "\(target)")
        }
        var dynamic = model([0, -1])
        dynamic.graph.initializer.removeLast()
        dynamic.graph.node.insert(Synth.node("GlobalAveragePool", ["r"], ["shape"], name: "/computed"), at: 3)
        let error = try #require(throws: ONNXError.self) { try ONNXLoader().load(Synth.bytes(dynamic)) }
        #expect(error.node == "/Reshape" && error.message.contains("static Reshape"))
    }
}
