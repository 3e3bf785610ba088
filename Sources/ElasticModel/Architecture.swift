import Learning

/// The base network's family and shape, enough to rebuild it before loading weights.
public struct Architecture: Codable, Sendable, Equatable {
    public enum Family: String, Codable, Sendable {
        case resnet, mobilenetv2
        /// A graph-defined network (an imported ONNX classifier): `graph` holds its stem and every block variant.
        case graph
    }

    public struct Stage: Codable, Sendable, Equatable {
        public var channels: Int, blocks: Int, stride: Int
        public init(channels: Int, blocks: Int, stride: Int) { self.channels = channels; self.blocks = blocks; self.stride = stride }
    }

    public var family: Family
    /// ResNet: one width per stage.
    public var widths: [Int]?
    /// ResNet: basic blocks per stage.
    public var blocksPerStage: [Int]?
    /// MobileNetV2: stem width, stages and expansion factor.
    public var stemWidth: Int?
    public var stages: [Stage]?
    public var expansion: Int?
    public var inputShape: [Int]
    public var classes: Int
    /// The graph family's network (checked with the manifest's block positions by `DeclaredNetwork`).
    public var graph: GraphSpec?

    public static func resnet(widths: [Int], blocksPerStage: [Int], inputShape: [Int] = [1, 28, 28], classes: Int = 10) -> Architecture {
        Architecture(family: .resnet, widths: widths, blocksPerStage: blocksPerStage, stemWidth: nil, stages: nil, expansion: nil,
                     inputShape: inputShape, classes: classes)
    }

    public static func mobileNetV2(stemWidth: Int, stages: [Stage], expansion: Int, inputShape: [Int] = [1, 28, 28], classes: Int = 10) -> Architecture {
        Architecture(family: .mobilenetv2, widths: nil, blocksPerStage: nil, stemWidth: stemWidth, stages: stages, expansion: expansion,
                     inputShape: inputShape, classes: classes)
    }

    /// Checks ranges before anything is allocated, so a hostile manifest cannot ask for a huge network.
    public func validate() throws(PackageError) {
        func bad(_ field: String, _ why: String) -> PackageError { .invalidManifest(field: "architecture.\(field)", message: why) }
        guard inputShape.count == 3, inputShape.allSatisfy({ (1...512).contains($0) }) else { throw bad("input_shape", "must be three sizes in 1...512") }
        guard (2...10_000).contains(classes) else { throw bad("classes", "must be in 2...10000") }
        switch family {
        case .resnet:
            guard let w = widths, let b = blocksPerStage, !w.isEmpty, w.count == b.count, w.count <= 8 else {
                throw bad("widths", "resnet needs widths and blocks_per_stage of equal length (1...8)")
            }
            guard w.allSatisfy({ (1...1024).contains($0) }) else { throw bad("widths", "must be in 1...1024") }
            guard b.allSatisfy({ (1...16).contains($0) }) else { throw bad("blocks_per_stage", "must be in 1...16") }
        case .mobilenetv2:
            guard let s = stemWidth, (1...1024).contains(s) else { throw bad("stem_width", "must be in 1...1024") }
            guard let st = stages, !st.isEmpty, st.count <= 8,
                  st.allSatisfy({ (1...1024).contains($0.channels) && (1...16).contains($0.blocks) && (1...2).contains($0.stride) }) else {
                throw bad("stages", "need 1...8 stages with channels 1...1024, blocks 1...16, stride 1 or 2")
            }
            guard let e = expansion, (1...8).contains(e) else { throw bad("expansion", "must be in 1...8") }
        case .graph:
            guard let g = graph else { throw bad("graph", "missing: the graph family carries its network") }
            guard !g.blocks.isEmpty, g.blocks.count <= PackageLimits.maxBlocks else { throw bad("graph.blocks", "1...\(PackageLimits.maxBlocks) positions") }
            guard inputShape[1] <= GraphSpec.maxSpatial, inputShape[2] <= GraphSpec.maxSpatial else { throw bad("input_shape", "sizes must be at most \(GraphSpec.maxSpatial)") }
        }
    }

    /// The base network with freshly initialised weights (seeded).
    public func makeModel(seed: UInt64 = 0) -> Model {
        switch family {
        case .resnet:
            return Model.resnet(widths: widths ?? [], blocksPerStage: blocksPerStage ?? [], inputShape: inputShape, classes: classes, seed: seed)
        case .mobilenetv2:
            return Model.mobileNetV2(stem: stemWidth ?? 16, stages: (stages ?? []).map { ($0.channels, $0.blocks, $0.stride) },
                                     expansion: expansion ?? 4, inputShape: inputShape, classes: classes, seed: seed)
        case .graph:
            // Checked networks only (a package's architecture has passed `DeclaredNetwork`): the original blocks.
            guard let graph, let built = try? GraphNetwork.build(graph, inputShape: inputShape, classes: classes, seed: seed) else {
                preconditionFailure("makeModel of an unchecked graph architecture")
            }
            return built.model
        }
    }

    enum CodingKeys: String, CodingKey {
        case family, widths, stages, expansion, classes, graph
        case blocksPerStage = "blocks_per_stage"
        case stemWidth = "stem_width"
        case inputShape = "input_shape"
    }
}
