/// Free-form key/value tags used by selectors (`site=berlin`); keys are restricted so that the
/// `labels=k=v,k2=v2` query syntax stays unambiguous.
public enum Labels {
    public static let maxCount = 64
    public static let maxKeyLength = 63
    public static let maxValueLength = 255

    /// Keys: 1–63 characters of letters, digits, `.`, `_`, `/`, `-`.
    public static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard (1...maxKeyLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { b in
            (97...122).contains(b) || (65...90).contains(b) || (48...57).contains(b)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "/") || b == UInt8(ascii: "-")
        }
    }

    /// Values: up to 255 characters, none of `,` or `=` (they delimit the query syntax), no control characters.
    public static func isValidValue(_ value: String) -> Bool {
        value.count <= maxValueLength && !value.unicodeScalars.contains { s in
            s == "," || s == "=" || s.properties.generalCategory == .control
        }
    }

    public static func validate(_ labels: [String: String]?, into v: inout Validator, field: String = "labels") {
        guard let labels else { return }
        if labels.count > maxCount { v.fail(field, "must have at most \(maxCount) entries") }
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            if !isValidKey(key) {
                v.fail("\(field).\(key)", "key must be 1–63 characters of letters, digits, '.', '_', '/' or '-'")
            } else if !isValidValue(value) {
                v.fail("\(field).\(key)", "value must be at most 255 characters without ',', '=' or control characters")
            }
        }
    }

    /// Parses the `labels=site=berlin,tier=cam` query syntax; the failure names the malformed part.
    public static func parseSelector(_ text: String) -> Result<[String: String], ValidationIssue> {
        var out: [String: String] = [:]
        for pair in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, isValidKey(String(parts[0])), isValidValue(String(parts[1])) else {
                return .failure(ValidationIssue(field: "labels", message: "must be key=value pairs separated by commas, e.g. site=berlin,tier=cam"))
            }
            out[String(parts[0])] = String(parts[1])
        }
        return .success(out)
    }
}
