/// One interchangeable implementation of a block position.
public struct VariantSpec: Codable, Sendable, Equatable {
    public enum Skip: String, Codable, Sendable {
        /// The block is dropped: its input passes through (residual blocks whose shapes agree).
        case identity
        /// Only the block's projection shortcut runs (residual blocks whose shapes change).
        case shortcut
    }

    /// Stable name: `s0`, `s25`, `s50`, `s75` (filter sparsity in percent) or `skip`.
    public var id: String
    /// Fraction of the block's inner filters removed (L1-norm pruning); 1 for skip variants.
    public var sparsity: Double
    /// Width of the pruned inner layer; nil for skip variants.
    public var hiddenChannels: Int?
    public var skip: Skip?
    /// Measured by the builder; nil until profiled.
    public var profile: CostProfile?
    /// The builder's distillation of this variant against the original block; nil for s0 and identity skips.
    public var distillation: Distillation.Outcome?

    public init(id: String, sparsity: Double, hiddenChannels: Int?, skip: Skip?, profile: CostProfile? = nil,
                distillation: Distillation.Outcome? = nil) {
        self.id = id
        self.sparsity = sparsity
        self.hiddenChannels = hiddenChannels
        self.skip = skip
        self.profile = profile
        self.distillation = distillation
    }

    /// Prefix of this variant's tensors at `position`: the original block keeps the base names (`blocks.2.conv1`),
    /// derived ones live beside it (`blocks.2.s50.conv1`).
    public func tensorPrefix(position: String) -> String { id == "s0" ? position + "." : "\(position).\(id)." }

    enum CodingKeys: String, CodingKey {
        case id, sparsity, skip, profile, distillation
        case hiddenChannels = "hidden_channels"
    }

    /// A derived variant's id names its tensors (`blocks.2.<id>.conv1.weight`): 1–16 letters, digits, `-` or `_`,
    /// and not `adapter` (the adapter slot's name). Checked the same way where the network is declared and built.
    func validateID(field: String) throws(PackageError) {
        guard id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), !id.isEmpty,
              id.count <= 16, id != "adapter" else {
            throw .invalidManifest(field: "\(field).id", message: "1–16 letters, digits, - or _ (and not `adapter`)")
        }
    }
}

/// A block position of the elastic network: its shape and the variants that may fill it.
public struct PositionSpec: Codable, Sendable, Equatable {
    public var name: String
    public var kind: String
    public var inChannels: Int
    public var outChannels: Int
    public var stride: Int
    public var inputSize: [Int]
    /// Inner width of the original block (the one pruning narrows).
    public var hiddenChannels: Int
    /// "identity", "projection" or "none".
    public var residual: String
    public var variants: [VariantSpec]

    public init(name: String, kind: String, inChannels: Int, outChannels: Int, stride: Int, inputSize: [Int], hiddenChannels: Int,
                residual: String, variants: [VariantSpec]) {
        self.name = name
        self.kind = kind
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        self.inputSize = inputSize
        self.hiddenChannels = hiddenChannels
        self.residual = residual
        self.variants = variants
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, stride, residual, variants
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case inputSize = "input_size"
        case hiddenChannels = "hidden_channels"
    }
}
