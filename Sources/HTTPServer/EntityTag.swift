/// `If-Match` evaluated as RFC 9110 §13.1.1 says, in one place for every route: the condition holds when the
/// field is absent, when it is `*` and the resource exists, or when one listed entity tag equals the current one
/// by strong comparison (a weak tag `W/"…"` never matches). Any other tag, whatever its form, fails it (412).
public enum IfMatch: Equatable, Sendable {
    /// No `If-Match` field.
    case absent
    case anyExisting
    /// The listed tags, as sent (`"v1"`, `W/"v2"`).
    case tags([String])

    /// Parses the field's comma-separated list (values of repeated fields are joined); nil when a member is not
    /// an entity tag, which the caller answers with 400.
    public init?(_ headers: HTTPHeaders) {
        let values = headers.values("If-Match")
        guard !values.isEmpty else {
            self = .absent
            return
        }
        var tags: [String] = []
        for value in values {
            guard let members = Self.members(value) else { return nil }
            tags += members
        }
        if tags == ["*"] {
            self = .anyExisting
        } else if tags.isEmpty || tags.contains("*") {
            return nil
        } else {
            self = .tags(tags)
        }
    }

    /// Whether the request may proceed against a resource whose current strong tag is `current` (nil: the
    /// resource does not exist).
    public func matches(current: String?) -> Bool {
        switch self {
        case .absent: return true
        case .anyExisting: return current != nil
        case .tags(let tags):
            guard let current, !current.hasPrefix("W/") else { return false }
            return tags.contains { !$0.hasPrefix("W/") && $0 == current }
        }
    }

    /// Splits `"a", W/"b,c" , "d"` into its entity tags, honouring commas inside quotes; `*` stands alone.
    static func members(_ value: String) -> [String]? {
        var result: [String] = []
        let bytes = Array(value.utf8)
        var i = 0
        func skipSpace() { while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 } }
        while true {
            skipSpace()
            if i == bytes.count { break }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            let start = i
            if bytes[i] == UInt8(ascii: "*") {
                i += 1
            } else {
                if bytes[i] == UInt8(ascii: "W"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "/") { i += 2 }
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
                i += 1
                // etagc = %x21 / %x23-7E / obs-text
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                    guard bytes[i] == 0x21 || bytes[i] >= 0x23, bytes[i] != 0x7F else { return nil }
                    i += 1
                }
                guard i < bytes.count else { return nil }
                i += 1
            }
            result.append(String(decoding: bytes[start..<i], as: UTF8.self))
            skipSpace()
            guard i == bytes.count || bytes[i] == UInt8(ascii: ",") else { return nil }
        }
        return result
    }
}

extension HTTPRequest {
    /// The request's `If-Match`, or a 400 naming the header when it is not a list of entity tags.
    public func ifMatch() throws -> IfMatch {
        guard let condition = IfMatch(headers) else {
            throw HTTPError.badRequest("If-Match must be `*` or a list of entity tags such as \"v3\".",
                                       code: "invalid_header",
                                       errors: [FieldError(field: "If-Match", message: "must be `*` or entity tags like \"v3\"")])
        }
        return condition
    }
}
