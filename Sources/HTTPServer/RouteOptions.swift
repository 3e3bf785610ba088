/// Per-route body handling.
public struct RouteOptions: Sendable {
    /// Maximum body size in bytes; nil uses `HTTPServerConfiguration.defaultBodyLimit`.
    public var bodyLimit: Int?
    /// Stream the body into a temp file (`HTTPRequest.bodyFile`) instead of memory, for large uploads.
    public var spoolToDisk: Bool

    public init(bodyLimit: Int? = nil, spoolToDisk: Bool = false) {
        self.bodyLimit = bodyLimit
        self.spoolToDisk = spoolToDisk
    }
}

/// A handler answers at once (plain) or may park the request (long-poll).
public typealias HTTPHandler = @Sendable (HTTPRequest) throws -> HTTPResponse
public typealias LongPollHandler = @Sendable (HTTPRequest, LongPoll) throws -> HTTPResponse?

enum RouteHandler: Sendable {
    case plain(HTTPHandler)
    case longPoll(LongPollHandler)
}

struct Route: Sendable {
    var method: HTTPMethod
    var pattern: String
    var options: RouteOptions
    var handler: RouteHandler
    /// Names of the `{...}` segments, in order of appearance.
    var parameterNames: [String]
}
