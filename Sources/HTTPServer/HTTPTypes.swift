import Foundation

public enum HTTPMethod: String, Sendable, CaseIterable {
    case GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
}

/// Header fields in order, looked up case-insensitively.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (n, v) in elements { add(n, v) }
    }

    public subscript(_ name: String) -> String? {
        fields.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// Replaces every field of that name with one.
    public mutating func set(_ name: String, _ value: String) {
        fields.removeAll { $0.name.caseInsensitiveCompare(name) == .orderedSame }
        fields.append((name, value))
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    public var path: String
    /// Query arguments, percent-decoded; the last of repeated names wins.
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Set instead of `body` on routes that spool their upload to disk.
    public var bodyFile: String?
    public var requestID: String
    public var pathParameters: [String: String]

    public init(method: HTTPMethod, path: String, query: [String: String] = [:], headers: HTTPHeaders = .init(),
                body: [UInt8] = [], bodyFile: String? = nil, requestID: String = UUID().uuidString.lowercased(),
                pathParameters: [String: String] = [:]) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyFile = bodyFile
        self.requestID = requestID
        self.pathParameters = pathParameters
    }

    /// The token of `Authorization: Bearer <token>`.
    public var bearerToken: String? {
        guard let value = headers["Authorization"] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].caseInsensitiveCompare("Bearer") == .orderedSame else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// Decodes a JSON object body. Malformed JSON or a non-object is a 400; a missing field or a value of the
    /// wrong type is a 422 whose `errors` name the field by its JSON path.
    public func decodeJSON<T: Decodable>(_ type: T.Type) throws -> T {
        let data = Data(body)
        let top: Any
        do {
            top = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw HTTPError.badRequest("The body is not valid JSON.", code: "invalid_json",
                                       errors: [FieldError(field: "body", message: "must be valid JSON")])
        }
        guard top is [String: Any] else {
            throw HTTPError.badRequest("The body must be a JSON object.", code: "invalid_json",
                                       errors: [FieldError(field: "body", message: "must be a JSON object")])
        }
        do {
            return try JSONDecoder.api.decode(T.self, from: data)
        } catch let error as DecodingError {
            throw HTTPError.validation([FieldError(decodingError: error)])
        }
    }
}

extension FieldError {
    /// Names the field a decoding error is about, by its JSON path (`hardware.gflops`, `items.2.name`).
    init(decodingError error: DecodingError) {
        func path(_ keys: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let all = keys + (last.map { [$0] } ?? [])
            let p = all.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "body" : p
        }
        switch error {
        case .keyNotFound(let key, let context):
            self.init(field: path(context.codingPath, key), message: "is required")
        case .typeMismatch(let type, let context):
            self.init(field: path(context.codingPath), message: "must be \(Self.describe(type))")
        case .valueNotFound(let type, let context):
            self.init(field: path(context.codingPath), message: "must be \(Self.describe(type)), not null")
        case .dataCorrupted(let context):
            self.init(field: path(context.codingPath), message: "is invalid: \(context.debugDescription)")
        @unknown default:
            self.init(field: "body", message: "is invalid")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "a boolean"
        case is UUID.Type: return "a UUID string"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}

extension JSONDecoder {
    static var api: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Streamed from disk instead of `body` (large downloads).
    public var filePath: String?

    public init(status: Int, headers: HTTPHeaders = .init(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json<T: Encodable>(_ value: T, status: Int = 200, headers: HTTPHeaders = .init()) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        var headers = headers
        headers.set("Content-Type", "application/json")
        do {
            return HTTPResponse(status: status, headers: headers, body: Array(try encoder.encode(value)))
        } catch {
            return HTTPResponse(status: 500)
        }
    }

    public static func text(_ s: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: Array(s.utf8))
    }

    public static func file(path: String, contentType: String, headers: HTTPHeaders = .init()) -> HTTPResponse {
        var r = HTTPResponse(status: 200, headers: headers)
        r.headers.set("Content-Type", contentType)
        r.filePath = path
        return r
    }

    public static let noContent = HTTPResponse(status: 204)
}
