/// A segment trie stored as an array of value-type nodes, so a snapshot is an immutable, Sendable copy that
/// MHD's worker threads read without locking.
struct RouteTable: Sendable {
    struct Node: Sendable {
        var literals: [String: Int] = [:]
        var parameterChild: Int?
        var routes: [HTTPMethod: Route] = [:]
    }

    enum Match {
        case found(Route, [String: String])
        case methodNotAllowed([HTTPMethod])
        case notFound
        case malformed
    }

    private(set) var nodes: [Node] = [Node()]
    private(set) var ordered: [(method: HTTPMethod, pattern: String)] = []

    static func segments(of pattern: Substring) -> [Substring] {
        let trimmed = pattern.utf8.first == UInt8(ascii: "/") ? pattern.dropFirst() : pattern
        if trimmed.isEmpty { return [] }
        return trimmed.split(separator: "/", omittingEmptySubsequences: false)
    }

    mutating func add(_ route: Route) {
        precondition(route.pattern.hasPrefix("/"), "route pattern must start with '/': \(route.pattern)")
        var route = route
        var names: [String] = []
        var index = 0
        for segment in Self.segments(of: route.pattern[...]) {
            if segment.hasPrefix("{") && segment.hasSuffix("}") && segment.count > 2 {
                names.append(String(segment.dropFirst().dropLast()))
                if let next = nodes[index].parameterChild {
                    index = next
                } else {
                    nodes.append(Node())
                    nodes[index].parameterChild = nodes.count - 1
                    index = nodes.count - 1
                }
            } else {
                let key = String(segment)
                if let next = nodes[index].literals[key] {
                    index = next
                } else {
                    nodes.append(Node())
                    nodes[index].literals[key] = nodes.count - 1
                    index = nodes.count - 1
                }
            }
        }
        precondition(nodes[index].routes[route.method] == nil,
                     "duplicate route \(route.method.rawValue) \(route.pattern)")
        route.parameterNames = names
        nodes[index].routes[route.method] = route
        ordered.append((route.method, route.pattern))
    }

    /// Literal segments beat parameters; the first matching node that serves `method` wins, otherwise the first
    /// matching node decides the 405's Allow list. HEAD falls back to GET unless the GET route says otherwise.
    func match(_ method: HTTPMethod, path: Substring) -> Match {
        guard path.utf8.first == UInt8(ascii: "/") else { return .notFound }
        let segments = Self.segments(of: path)
        var values: [Substring] = []
        var firstMatched: Int?
        guard let node = search(0, segments[...], method, &values, &firstMatched) else {
            guard let firstMatched else { return .notFound }
            return .methodNotAllowed(Self.allowed(nodes[firstMatched].routes))
        }
        let routes = nodes[node].routes
        guard let route = routes[method] ?? (method == .HEAD ? routes[.GET] : nil) else { return .notFound }
        if method == .HEAD && routes[.HEAD] == nil && !route.options.allowsHead {
            return .methodNotAllowed(Self.allowed(routes))
        }
        var parameters: [String: String] = [:]
        for (name, raw) in zip(route.parameterNames, values) {
            guard let decoded = URIParsing.decode(raw, plusAsSpace: false) else { return .malformed }
            parameters[name] = decoded
        }
        return .found(route, parameters)
    }

    /// The Allow list of one node: its methods, plus HEAD where its GET route serves HEAD.
    private static func allowed(_ routes: [HTTPMethod: Route]) -> [HTTPMethod] {
        var allowed = Set(routes.keys)
        if let get = routes[.GET], get.options.allowsHead { allowed.insert(.HEAD) }
        return HTTPMethod.allCases.filter(allowed.contains)
    }

    private func search(_ index: Int, _ rest: ArraySlice<Substring>, _ method: HTTPMethod,
                        _ values: inout [Substring], _ firstMatched: inout Int?) -> Int? {
        let node = nodes[index]
        guard let segment = rest.first else {
            guard !node.routes.isEmpty else { return nil }
            if firstMatched == nil { firstMatched = index }
            return node.routes[method] != nil || (method == .HEAD && node.routes[.GET] != nil) ? index : nil
        }
        if let next = node.literals[String(segment)],
           let found = search(next, rest.dropFirst(), method, &values, &firstMatched) {
            return found
        }
        if let next = node.parameterChild, !segment.isEmpty {
            values.append(segment)
            if let found = search(next, rest.dropFirst(), method, &values, &firstMatched) { return found }
            values.removeLast()
        }
        return nil
    }
}
