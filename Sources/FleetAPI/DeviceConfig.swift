import Foundation

/// The variant a device runs at one block position.
public struct VariantChoice: Codable, Sendable, Equatable {
    public var block: String
    public var variant: String

    public init(block: String, variant: String) {
        self.block = block
        self.variant = variant
    }
}
