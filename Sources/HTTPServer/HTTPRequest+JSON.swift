import Foundation

extension HTTPRequest {
    /// Decodes the body, turning every decoding failure into a client error: unparsable or non-object bodies are
    /// 400 `invalid_json`; wrong types, missing fields and values rejected in `init(from:)` are 422
    /// `validation_failed` with one `FieldError` per failure named by its dotted coding path. A string (value or
    /// key) holding U+0000 is refused with 422 naming its field: C-string layers below (libpq) would cut it short.
    /// Dates as ISO 8601; `decodeJSON(_:using:)` takes the application's own wire decoder.
    public func decodeJSON<T: Decodable>(_ type: T.Type) throws -> T {
        try decodeJSON(type, using: JSONCoding.decoder())
    }

    /// As `decodeJSON(_:)`, with `decoder` (the application's wire format, its date format above all).
    public func decodeJSON<T: Decodable>(_ type: T.Type, using decoder: JSONDecoder) throws -> T {
        let bytes = try bodyBytes()
        guard !bytes.isEmpty else {
            throw HTTPError.badRequest("The request body is empty; a JSON document was expected.",
                                       code: "invalid_json")
        }
        if Self.containsEscapedNUL(bytes),
           let document = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
           let path = Self.pathOfNUL(in: document, at: []) {
            throw HTTPError.validation([FieldError(field: path.isEmpty ? "body" : path,
                                                   message: "must not contain the NUL character (U+0000)")])
        }
        do {
            return try decoder.decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw Self.httpError(for: error)
        }
    }

    static func httpError(for error: DecodingError) -> HTTPError {
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return .badRequest("The request body is not valid JSON.", code: "invalid_json")
        case .typeMismatch(let type, let context) where context.codingPath.isEmpty:
            return .badRequest("The request body must be \(withArticle("JSON " + jsonTypeName(type))).",
                               code: "invalid_json")
        case .valueNotFound(_, let context) where context.codingPath.isEmpty:
            return .badRequest("The request body must not be null.", code: "invalid_json")
        case .keyNotFound(let key, let context):
            return .validation([FieldError(field: fieldPath(context.codingPath + [key]), message: "is required")])
        case .valueNotFound(_, let context):
            return .validation([FieldError(field: fieldPath(context.codingPath), message: "must not be null")])
        case .typeMismatch(let type, let context):
            return .validation([FieldError(field: fieldPath(context.codingPath),
                                           message: "must be \(withArticle(jsonTypeName(type)))")])
        case .dataCorrupted(let context):
            return .validation([FieldError(field: fieldPath(context.codingPath), message: context.debugDescription)])
        @unknown default:
            return .badRequest("The request body could not be decoded.", code: "invalid_json")
        }
    }

    /// Whether the JSON text has a `\u0000` escape (a raw NUL byte is invalid JSON and fails decoding anyway).
    static func containsEscapedNUL(_ bytes: [UInt8]) -> Bool {
        var i = 0
        let zero = UInt8(ascii: "0")
        while i + 5 < bytes.count {
            if bytes[i] == UInt8(ascii: "\\") {
                if bytes[i + 1] == UInt8(ascii: "u"), bytes[i + 2] == zero, bytes[i + 3] == zero,
                   bytes[i + 4] == zero, bytes[i + 5] == zero {
                    return true
                }
                i += 2  // skip the escaped character, so `\\u0000` (a backslash, then text) is not a NUL
            } else {
                i += 1
            }
        }
        return false
    }

    /// Dotted path of the first string (in key order) that holds U+0000, or nil.
    static func pathOfNUL(in value: Any, at path: [String]) -> String? {
        if let text = value as? String {
            return text.utf8.contains(0) ? path.joined(separator: ".") : nil
        }
        if let array = value as? [Any] {
            for (index, element) in array.enumerated() {
                if let found = pathOfNUL(in: element, at: path + [String(index)]) { return found }
            }
        } else if let object = value as? [String: Any] {
            for key in object.keys.sorted() {
                if key.utf8.contains(0) {
                    return (path + [key.replacingOccurrences(of: "\u{0}", with: "\\u0000")]).joined(separator: ".")
                }
                if let found = pathOfNUL(in: object[key]!, at: path + [key]) { return found }
            }
        }
        return nil
    }

    /// "devices.0.name": array indices as numbers, keys as their JSON names.
    static func fieldPath(_ path: [any CodingKey]) -> String {
        path.map { key in key.intValue.map(String.init) ?? key.stringValue }.joined(separator: ".")
    }

    static func withArticle(_ noun: String) -> String {
        (noun.first.map { "aeiou".contains($0) } ?? false ? "an " : "a ") + noun
    }

    static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Substring.Type: "string"
        case is Bool.Type: "boolean"
        case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
             is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type: "integer"
        case is Double.Type, is Float.Type: "number"
        default:
            String(describing: type).hasPrefix("Array") ? "array" : "object"
        }
    }
}
