/// One invalid input field, as listed in a problem's `errors` member; `field` is a dotted path ("config.blocks.0").
public struct FieldError: Codable, Sendable, Equatable {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}
