import Synchronization

public typealias HTTPHandler = @Sendable (HTTPRequest) throws -> HTTPResponse
public typealias LongPollHandler = @Sendable (HTTPRequest, LongPoll) throws -> HTTPResponse?

public struct RouteOptions: Sendable {
    /// Overrides the server's default body limit for this route.
    public var bodyLimit: Int?
    /// Writes the body to a temporary file (`request.bodyFile`) as it arrives instead of holding it in memory.
    public var spoolToDisk: Bool

    public init(bodyLimit: Int? = nil, spoolToDisk: Bool = false) {
        self.bodyLimit = bodyLimit
        self.spoolToDisk = spoolToDisk
    }
}

/// Maps method and path to handlers. Literal segments beat `{parameters}`; an unknown path is a 404,
/// a known path with another method a 405 listing the allowed ones.
public final class Router: Sendable {
    enum Handler: Sendable {
        case plain(HTTPHandler)
        case longPoll(LongPollHandler)
    }

    struct Route: Sendable {
        let method: HTTPMethod
        let pattern: String
        let segments: [Segment]
        let options: RouteOptions
        let handler: Handler
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    enum Match {
        case found(Route, [String: String])
        case methodNotAllowed([HTTPMethod])
        case notFound
    }

    private let table = Mutex<[Route]>([])

    public init() {}

    public func add(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = .init(), _ handler: @escaping HTTPHandler) {
        insert(Route(method: method, pattern: pattern, segments: Self.parse(pattern), options: options, handler: .plain(handler)))
    }

    /// A route whose handler may answer later: returning nil suspends the connection until `poll.complete`
    /// or the deadline set with `poll.wait`.
    public func addLongPoll(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping LongPollHandler) {
        insert(Route(method: method, pattern: pattern, segments: Self.parse(pattern), options: .init(), handler: .longPoll(handler)))
    }

    private func insert(_ route: Route) {
        table.withLock { $0.append(route) }
    }

    public var routes: [(method: HTTPMethod, pattern: String)] {
        table.withLock { $0.map { ($0.method, $0.pattern) } }
    }

    static func parse(_ pattern: String) -> [Segment] {
        pattern.split(separator: "/").map { s in
            s.hasPrefix("{") && s.hasSuffix("}") ? .parameter(String(s.dropFirst().dropLast())) : .literal(String(s))
        }
    }

    func match(_ method: HTTPMethod, _ path: String) -> Match {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        let routes = table.withLock { $0 }
        var best: (route: Route, params: [String: String], literals: Int)?
        var allowed: [HTTPMethod] = []
        for route in routes where route.segments.count == parts.count {
            var params: [String: String] = [:]
            var literals = 0
            var ok = true
            for (seg, part) in zip(route.segments, parts) {
                switch seg {
                case .literal(let l):
                    if l != part { ok = false } else { literals += 1 }
                case .parameter(let name):
                    params[name] = String(part)
                }
                if !ok { break }
            }
            guard ok else { continue }
            let effective = method == .HEAD ? HTTPMethod.GET : method
            if route.method == effective {
                if best == nil || literals > best!.literals { best = (route, params, literals) }
            } else if !allowed.contains(route.method) {
                allowed.append(route.method)
            }
        }
        if let best { return .found(best.route, best.params) }
        if !allowed.isEmpty {
            if allowed.contains(.GET) { allowed.append(.HEAD) }
            return .methodNotAllowed(allowed)
        }
        return .notFound
    }

    /// Body limit for the route a request will reach (checked before the body is read).
    func options(_ method: HTTPMethod, _ path: String) -> RouteOptions? {
        if case .found(let r, _) = match(method, path) { return r.options }
        return nil
    }
}
