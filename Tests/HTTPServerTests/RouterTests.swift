import Testing
@testable import HTTPServer

@Suite struct RouterTests {
    static func router() -> Router {
        let router = Router()
        let ok: HTTPHandler = { _ in .noContent }
        router.add(.GET, "/v1/devices", ok)
        router.add(.POST, "/v1/devices", ok)
        router.add(.GET, "/v1/devices/{id}", ok)
        router.add(.GET, "/v1/devices/me", ok)
        router.add(.PUT, "/v1/devices/{deviceID}/config", ok)
        router.add(.DELETE, "/v1/devices/{id}/adapters/{name}", ok)
        router.add(.GET, "/", ok)
        return router
    }

    func match(_ method: HTTPMethod, _ path: String) -> RouteTable.Match {
        Self.router().snapshot().match(method, path: path[...])
    }

    @Test func literalSegmentsBeatParameters() throws {
        guard case .found(let route, let parameters) = match(.GET, "/v1/devices/me") else {
            Issue.record("no match")
            return
        }
        #expect(route.pattern == "/v1/devices/me")
        #expect(parameters.isEmpty)
        guard case .found(let other, let values) = match(.GET, "/v1/devices/abc") else {
            Issue.record("no match")
            return
        }
        #expect(other.pattern == "/v1/devices/{id}")
        #expect(values == ["id": "abc"])
    }

    @Test func parametersArePercentDecodedPerSegment() {
        guard case .found(let route, let values) = match(.DELETE, "/v1/devices/a%2Fb/adapters/caf%C3%A9") else {
            Issue.record("no match")
            return
        }
        #expect(route.pattern == "/v1/devices/{id}/adapters/{name}")
        #expect(values == ["id": "a/b", "name": "café"])
        guard case .found(_, let named) = match(.PUT, "/v1/devices/me/config") else {
            Issue.record("literal 'me' must fall back to the parameter branch")
            return
        }
        #expect(named == ["deviceID": "me"])
    }

    @Test func unknownPathsAndEmptySegmentsAreNotFound() {
        for path in ["/v2/devices", "/v1/devices/", "/v1/devices//config", "v1/devices", "/v1/devices/x/y"] {
            guard case .notFound = match(.GET, path) else {
                Issue.record("\(path) should be 404")
                continue
            }
        }
    }

    @Test func wrongMethodListsAllowedMethodsIncludingHead() {
        guard case .methodNotAllowed(let allowed) = match(.PATCH, "/v1/devices") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == [.GET, .HEAD, .POST])
        guard case .methodNotAllowed(let put) = match(.GET, "/v1/devices/x/config") else {
            Issue.record("expected 405")
            return
        }
        #expect(put == [.PUT])
    }

    @Test func headIsServedByGet() {
        guard case .found(let route, _) = match(.HEAD, "/v1/devices/abc") else {
            Issue.record("HEAD should use the GET route")
            return
        }
        #expect(route.method == .GET)
        guard case .found(let root, _) = match(.GET, "/") else {
            Issue.record("root")
            return
        }
        #expect(root.pattern == "/")
    }

    @Test func malformedParameterEncodingIsReported() {
        guard case .malformed = match(.GET, "/v1/devices/%FF%FE") else {
            Issue.record("invalid UTF-8 must be reported")
            return
        }
    }

    @Test func routesAreListedInRegistrationOrder() {
        let routes = Self.router().routes
        #expect(routes.map { "\($0.method.rawValue) \($0.pattern)" } == [
            "GET /v1/devices", "POST /v1/devices", "GET /v1/devices/{id}", "GET /v1/devices/me",
            "PUT /v1/devices/{deviceID}/config", "DELETE /v1/devices/{id}/adapters/{name}", "GET /",
        ])
    }
}
