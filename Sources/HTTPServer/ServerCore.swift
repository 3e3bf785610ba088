internal import CMicroHTTPD
import Dispatch
import Foundation
import Synchronization

/// Everything the MHD callbacks need while the daemon runs: the frozen route table, configuration, the parked
/// long-polls and the in-flight count for graceful shutdown. It turns callbacks into `HTTPRequest`s, calls handlers
/// and renders `HTTPResponse`s; routing and JSON live above it.
final class ServerCore: Sendable {
    let configuration: HTTPServerConfiguration
    let routes: RouteTable
    let shuttingDown = Atomic<Bool>(false)
    /// Requests between the URI-log and the request-completed callbacks.
    let inFlight = Atomic<Int>(0)
    let parked = Mutex<[ObjectIdentifier: LongPoll]>([:])
    let timerQueue = DispatchQueue(label: "HTTPServer.long-poll-deadlines")
    /// How far past its limit a chunked body is read (and dropped) so the 413 can still be sent; beyond, we hang up.
    let discardAllowance = 8 << 20

    init(configuration: HTTPServerConfiguration, routes: RouteTable) {
        self.configuration = configuration
        self.routes = routes
    }

    // MARK: - Access handler

    func handle(_ connection: OpaquePointer, _ state: ConnectionState, method: UnsafePointer<CChar>?,
                upload: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>) -> MHD_Result {
        switch state.stage {
        case .new:
            return begin(connection, state, method: method)
        case .body:
            let size = uploadSize.pointee
            if size > 0 {
                uploadSize.pointee = 0
                return receive(state, UnsafeRawBufferPointer(start: upload, count: size))
            }
            return finish(connection, state)
        case .suspended:
            let response = state.poll?.takeResponse() ?? .noContent
            return send(connection, state, response)
        case .responded:
            uploadSize.pointee = 0
            return .YES
        }
    }

    private func begin(_ connection: OpaquePointer, _ state: ConnectionState,
                       method methodToken: UnsafePointer<CChar>?) -> MHD_Result {
        state.stage = .body
        var headers = HTTPHeaders()
        withUnsafeMutablePointer(to: &headers) { pointer in
            _ = MHD_get_connection_values(connection, .HEADER_KIND, collectHeader, UnsafeMutableRawPointer(pointer))
        }
        if let incoming = headers["X-Request-Id"], RequestID.isValid(incoming) {
            state.requestID = incoming
        } else {
            state.requestID = RequestID.generate()
        }
        state.limit = configuration.defaultBodyLimit

        let method = methodToken.flatMap(HTTPMethod.init(token:))
        if let methodToken { state.methodName = String(cString: methodToken) }
        let (path, rawQuery) = URIParsing.split(state.target)
        var query: [String: String] = [:]
        if method == nil {
            // A method no route serves is the client's error (405 with the path's Allow list, or 404), never a 5xx.
            switch routes.match(.OPTIONS, path: path) {
            case .methodNotAllowed(let allowed): state.error = .methodNotAllowed(allowed)
            case .found(let route, _): state.error = .methodNotAllowed([route.method])
            case .notFound, .malformed: state.error = .notFound("No resource at this path.")
            }
        } else if !URIParsing.hasValidEscapes(path) {
            state.error = .badRequest("The request path contains a malformed percent-escape.")
        } else if let rawQuery, let parsed = URIParsing.parseQuery(rawQuery) {
            query = parsed
        } else if rawQuery != nil {
            state.error = .badRequest("The query string contains a malformed percent-escape or invalid UTF-8.")
        }
        if state.error == nil, let method {
            switch routes.match(method, path: path) {
            case .found(let route, let parameters):
                state.route = route
                state.limit = route.options.bodyLimit ?? configuration.defaultBodyLimit
                state.request = HTTPRequest(method: method, path: String(path), query: query, headers: headers,
                                            requestID: state.requestID, pathParameters: parameters)
            case .methodNotAllowed(let allowed):
                state.error = .methodNotAllowed(allowed)
            case .notFound:
                state.error = .notFound("No resource at \(path).")
            case .malformed:
                state.error = .badRequest("A path segment contains invalid UTF-8 after percent-decoding.")
            }
        }

        // Refuse an oversized body before reading a byte of it (MHD then skips `100 Continue` and closes).
        // An earlier error (404, 405, ...) keeps precedence over the size.
        if let declared = headers["Content-Length"], let length = Int(declared), length > state.limit {
            let error = state.error ?? .payloadTooLarge(limit: state.limit)
            state.error = error
            return send(connection, state, error.problemResponse(requestID: state.requestID))
        }
        if state.error == nil, state.route?.options.spoolToDisk == true {
            openSpool(state)
        }
        return .YES
    }

    private func receive(_ state: ConnectionState, _ chunk: UnsafeRawBufferPointer) -> MHD_Result {
        state.received += chunk.count
        if state.received > state.limit {
            if state.error == nil {
                state.error = .payloadTooLarge(limit: state.limit)
                state.request?.body = []
                closeSpool(state, delete: true)
            }
            // Keep reading (and dropping) a little so the client gets its 413; past that, hang up.
            return state.received - state.limit > discardAllowance ? .NO : .YES
        }
        guard state.error == nil else { return .YES }
        if state.spoolFD >= 0 {
            var offset = 0
            while offset < chunk.count {
                let written = Foundation.write(state.spoolFD, chunk.baseAddress! + offset, chunk.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    reportInternalError(POSIXError(.init(rawValue: errno) ?? .EIO), context: "spooling a request body")
                    state.error = .internalError(state.requestID)
                    closeSpool(state, delete: true)
                    return .YES
                }
                offset += written
            }
        } else {
            state.request?.body.append(contentsOf: chunk)
        }
        return .YES
    }

    private func finish(_ connection: OpaquePointer, _ state: ConnectionState) -> MHD_Result {
        if let error = state.error {
            return send(connection, state, error.problemResponse(requestID: state.requestID))
        }
        guard let route = state.route, var request = state.request else {
            return send(connection, state, HTTPError.internalError(state.requestID)
                .problemResponse(requestID: state.requestID))
        }
        state.request = nil
        if state.spoolFD >= 0 {
            closeSpool(state, delete: false)
            request.bodyFile = state.spoolPath
        }
        switch route.handler {
        case .plain(let handler):
            let response = run(request) { try handler($0) }
            closeSpool(state, delete: true)
            return send(connection, state, response)
        case .longPoll(let handler):
            let poll = LongPoll()
            let id = ObjectIdentifier(poll)
            parked.withLock { $0[id] = poll }
            state.poll = poll
            let immediate: HTTPResponse?
            do {
                immediate = try handler(request, poll)
            } catch {
                immediate = problem(for: error, requestID: request.requestID)
            }
            closeSpool(state, delete: true)
            if let immediate {
                poll.detach()
                return send(connection, state, immediate)
            }
            if let completedMeanwhile = poll.suspend(connection) {
                return send(connection, state, completedMeanwhile)
            }
            state.stage = .suspended
            // Shutdown sets the flag before it expires the parked polls, so a poll parked after that sweep sees it.
            if shuttingDown.load(ordering: .sequentiallyConsistent) {
                poll.expire()
            } else {
                poll.scheduleExpiry(on: timerQueue)
            }
            return .YES
        }
    }

    private func run(_ request: HTTPRequest, _ body: (HTTPRequest) throws -> HTTPResponse) -> HTTPResponse {
        do {
            return try body(request)
        } catch {
            return problem(for: error, requestID: request.requestID)
        }
    }

    // MARK: - Responses

    private func send(_ connection: OpaquePointer, _ state: ConnectionState, _ response: HTTPResponse) -> MHD_Result {
        state.stage = .responded
        var response = response
        if let deferred = response.deferredError {
            response = deferred.problemResponse(requestID: state.requestID)
        }
        var made: OpaquePointer?
        var length = response.body.count
        if let path = response.filePath {
            (made, length) = Self.fileResponse(path)
            if made == nil {
                response = HTTPError.notFound("The file is not available.").problemResponse(requestID: state.requestID)
                length = response.body.count
            }
        }
        if made == nil {
            made = response.body.withUnsafeBytes { bytes in
                MHD_create_response_from_buffer(bytes.count, UnsafeMutableRawPointer(mutating: bytes.baseAddress),
                                                .RESPMEM_MUST_COPY)
            }
        }
        guard let mhdResponse = made else { return .NO }
        defer { MHD_destroy_response(mhdResponse) }
        for (name, value) in response.headers {
            // MHD computes these itself and refuses them from the application.
            if HTTPHeaders.namesEqual(name, "Content-Length") || HTTPHeaders.namesEqual(name, "Transfer-Encoding") {
                continue
            }
            _ = MHD_add_response_header(mhdResponse, name, value)
        }
        _ = MHD_add_response_header(mhdResponse, "X-Request-Id", state.requestID)
        if shuttingDown.load(ordering: .relaxed) {
            _ = MHD_add_response_header(mhdResponse, "Connection", "close")
        }
        state.status = response.status
        state.bytesSent = length
        return MHD_queue_response(connection, UInt32(clamping: response.status), mhdResponse)
    }

    /// MHD takes ownership of the descriptor and closes it with the response.
    private static func fileResponse(_ path: String) -> (OpaquePointer?, Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return (nil, 0) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
              let response = MHD_create_response_from_fd(Int(info.st_size), fd) else {
            close(fd)
            return (nil, 0)
        }
        return (response, Int(info.st_size))
    }

    // MARK: - Spooling

    private func openSpool(_ state: ConnectionState) {
        let path = (configuration.spoolDirectory as NSString).appendingPathComponent("upload-\(RequestID.generate())")
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if fd < 0 {
            reportInternalError(POSIXError(.init(rawValue: errno) ?? .EIO), context: "creating spool file \(path)")
            state.error = .internalError(state.requestID)
            return
        }
        state.spoolFD = fd
        state.spoolPath = path
    }

    private func closeSpool(_ state: ConnectionState, delete: Bool) {
        if state.spoolFD >= 0 {
            close(state.spoolFD)
            state.spoolFD = -1
        }
        if delete, let path = state.spoolPath {
            unlink(path)
            state.spoolPath = nil
        }
    }

    // MARK: - Completion

    /// MHD is done with the request (sent, aborted or daemon stopping).
    func completed(_ state: ConnectionState) {
        closeSpool(state, delete: true)
        if let poll = state.poll {
            poll.detach()
            _ = parked.withLock { $0.removeValue(forKey: ObjectIdentifier(poll)) }
        }
        if let log = configuration.accessLog {
            let elapsed = ContinuousClock.now - state.started
            let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
            let millis = "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
            let status = state.status == 0 ? "aborted" : String(state.status)
            log("\(state.methodName) \(state.path) \(status) \(state.bytesSent)B \(millis)ms \(state.requestID)")
        }
        inFlight.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Answers every parked long-poll with its timeout response (shutdown).
    func expireAllParked() {
        let polls = parked.withLock { Array($0.values) }
        for poll in polls { poll.expire() }
    }
}
