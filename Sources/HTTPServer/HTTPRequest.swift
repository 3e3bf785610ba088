import Foundation

/// One parsed request as a handler sees it: already routed, body complete (or spooled), ids assigned.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// Raw path as sent (still percent-encoded), without the query.
    public var path: String
    /// Percent-decoded query items (`+` is a space); when a name repeats, the last value wins.
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Set instead of `body` when the route spools to disk; the file is deleted after the handler returns.
    public var bodyFile: String?
    /// From a valid incoming `X-Request-Id` (<= 128 chars of `[A-Za-z0-9._-]`) or a fresh UUID.
    public var requestID: String
    /// Percent-decoded values of the `{name}` segments of the matched pattern.
    public var pathParameters: [String: String]
    /// The peer's address ("127.0.0.1", "2001:db8::1") as the socket reports it; nil in-process.
    public var clientAddress: String?
    /// What the route's `RouteOptions.authorize` returned, decided from the headers before the body was read.
    public var authorization: (any Sendable)?

    public init(method: HTTPMethod, path: String, query: [String: String] = [:], headers: HTTPHeaders = .init(),
                body: [UInt8] = [], bodyFile: String? = nil, requestID: String = RequestID.generate(),
                pathParameters: [String: String] = [:], clientAddress: String? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyFile = bodyFile
        self.requestID = requestID
        self.pathParameters = pathParameters
        self.clientAddress = clientAddress
    }

    /// The token of `Authorization: Bearer <token>` (scheme matched case-insensitively), or nil.
    public var bearerToken: String? {
        guard let value = headers["Authorization"] else { return nil }
        let utf8 = value.utf8
        guard utf8.count > 7 else { return nil }
        let scheme = String(value.prefix(7))
        guard HTTPHeaders.namesEqual(scheme, "Bearer ") else { return nil }
        let token = value.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// The request body bytes, read from the spool file when the route spooled it.
    public func bodyBytes() throws -> [UInt8] {
        guard let bodyFile else { return body }
        guard let data = FileManager.default.contents(atPath: bodyFile) else {
            throw HTTPError.internalError(requestID)
        }
        return [UInt8](data)
    }
}
