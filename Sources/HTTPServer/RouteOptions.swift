/// Decides from the request line and headers alone (the body is not read yet) whether the caller may go on:
/// it throws an `HTTPError` (401, 403, 429...) that is answered at once, or returns what it learned about the
/// caller, which the handler finds in `HTTPRequest.authorization`.
public typealias RequestAuthorizer = @Sendable (HTTPRequest) throws -> (any Sendable)?

/// Per-route body handling.
public struct RouteOptions: Sendable {
    /// Maximum body size in bytes; nil uses `HTTPServerConfiguration.defaultBodyLimit`.
    public var bodyLimit: Int?
    /// Stream the body into a temp file (`HTTPRequest.bodyFile`) instead of memory, for large uploads.
    public var spoolToDisk: Bool
    /// Runs before any byte of the body is read, so an unauthorised upload is refused without being buffered.
    public var authorize: RequestAuthorizer?
    /// Whether HEAD may be answered by running this GET route (false for routes with side effects, such as a
    /// long-poll that leases work: HEAD is then 405).
    public var allowsHead: Bool

    public init(bodyLimit: Int? = nil, spoolToDisk: Bool = false, authorize: RequestAuthorizer? = nil,
                allowsHead: Bool = true) {
        self.bodyLimit = bodyLimit
        self.spoolToDisk = spoolToDisk
        self.authorize = authorize
        self.allowsHead = allowsHead
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
