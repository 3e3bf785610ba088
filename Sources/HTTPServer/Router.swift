import Synchronization

/// Collects routes while the app wires itself up; the server takes an immutable snapshot at `start()`,
/// so routes added after that are not served.
public final class Router: Sendable {
    private let table = Mutex(RouteTable())

    public init() {}

    /// - Parameter pattern: e.g. "/v1/devices/{id}/config"; `{name}` matches one non-empty segment.
    public func add(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = .init(),
                    _ handler: @escaping HTTPHandler) {
        let route = Route(method: method, pattern: pattern, options: options, handler: .plain(handler),
                          parameterNames: [])
        table.withLock { $0.add(route) }
    }

    /// A route whose handler may return nil to park the request until `LongPoll.complete` or its deadline.
    /// Long-polls usually hand out work, so HEAD is not served by them unless `options` says so.
    public func addLongPoll(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = .init(allowsHead: false),
                            _ handler: @escaping @Sendable (HTTPRequest, LongPoll) throws -> HTTPResponse?) {
        let route = Route(method: method, pattern: pattern, options: options, handler: .longPoll(handler),
                          parameterNames: [])
        table.withLock { $0.add(route) }
    }

    /// Every registered (method, pattern), in registration order.
    public var routes: [(method: HTTPMethod, pattern: String)] {
        table.withLock { $0.ordered }
    }

    func snapshot() -> RouteTable {
        table.withLock { $0 }
    }
}
