import Foundation

extension Router {
    /// Runs a request through routing, its handler and error rendering without a socket, the way the server
    /// would (404/405/400 problems, the route's `authorize`, `X-Request-Id`, HEAD without body), so route tests
    /// need no port.
    /// `request.path` is the raw (still percent-encoded) path; `query` is used as given. Body limits and
    /// spooling are transport concerns and are not applied. A parked long-poll blocks until it is completed
    /// or its deadline passes.
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        var request = request
        var response: HTTPResponse
        switch snapshot().match(request.method, path: request.path[...]) {
        case .found(let route, let parameters):
            request.pathParameters = parameters
            do {
                request.authorization = try route.options.authorize?(request)
                response = Self.invoke(route.handler, request)
            } catch {
                response = problem(for: error, requestID: request.requestID)
            }
        case .methodNotAllowed(let allowed):
            response = HTTPError.methodNotAllowed(allowed).problemResponse(requestID: request.requestID)
        case .notFound:
            response = HTTPError.notFound("No resource at \(request.path).").problemResponse(requestID: request.requestID)
        case .malformed:
            response = HTTPError.badRequest("A path segment contains invalid UTF-8 after percent-decoding.")
                .problemResponse(requestID: request.requestID)
        }
        if let deferred = response.deferredError {
            response = deferred.problemResponse(requestID: request.requestID)
        }
        response.headers.set("X-Request-Id", request.requestID)
        if request.method == .HEAD { response.body = [] }
        return response
    }

    private static func invoke(_ handler: RouteHandler, _ request: HTTPRequest) -> HTTPResponse {
        do {
            switch handler {
            case .plain(let handler):
                return try handler(request)
            case .longPoll(let handler):
                let poll = LongPoll()
                if let immediate = try handler(request, poll) {
                    poll.detach()
                    return immediate
                }
                while !poll.isCompleted {
                    if ContinuousClock.now >= poll.deadline { poll.expire() } else { usleep(1_000) }
                }
                return poll.takeResponse() ?? .noContent
            }
        } catch {
            return problem(for: error, requestID: request.requestID)
        }
    }
}
