import Foundation

/// What a handler returns; the server adds `X-Request-Id` and renders it through MHD.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Set by `file(...)`: the body is streamed from this path instead of `body`.
    public internal(set) var filePath: String?
    /// Set when building the response itself failed (e.g. JSON encoding); rendered as a 500 problem with the request id.
    var deferredError: HTTPError?

    public init(status: Int, headers: HTTPHeaders = .init(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Encodes `value` as JSON; types choose their own CodingKeys, dates are ISO 8601, keys sorted for stable bytes.
    public static func json<T: Encodable>(_ value: T, status: Int = 200, headers: HTTPHeaders = .init()) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers)
        do {
            response.body = try [UInt8](JSONCoding.encoder().encode(value))
        } catch {
            reportInternalError(error, context: "encoding \(T.self) as JSON")
            response.deferredError = HTTPError(status: 500, code: "internal_error",
                                               detail: "The response could not be encoded.")
        }
        if !response.headers.contains("Content-Type") {
            response.headers.set("Content-Type", "application/json")
        }
        return response
    }

    public static func text(_ s: String, status: Int = 200,
                            contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: Array(s.utf8))
    }

    /// A body streamed from disk by MHD (`MHD_create_response_from_fd`), so large downloads never sit in memory.
    /// A missing or unreadable file becomes a 404 problem when the response is sent.
    public static func file(path: String, contentType: String, headers: HTTPHeaders = .init()) -> HTTPResponse {
        var response = HTTPResponse(status: 200, headers: headers)
        response.headers.set("Content-Type", contentType)
        response.filePath = path
        return response
    }

    public static let noContent = HTTPResponse(status: 204)
}

/// Shared coder settings so requests and responses agree on dates.
enum JSONCoding {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
                return date
            }
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return date }
            throw DecodingError.dataCorruptedError(in: container,
                                                   debugDescription: "Expected an ISO 8601 date-time.")
        }
        return decoder
    }
}

/// Causes of 500s go to the server's log (never to the client).
func reportInternalError(_ error: any Error, context: String) {
    ServerLog.logger.error("internal error while \(context): \(String(reflecting: error))")
}
