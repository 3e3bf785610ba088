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
    /// Open connections with their sockets, addresses and deadlines.
    let connections = ConnectionTracker()
    let lingerer: Lingerer

    init(configuration: HTTPServerConfiguration, routes: RouteTable) {
        self.configuration = configuration
        self.routes = routes
        self.lingerer = Lingerer(limits: configuration.limits)
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
        let key = Self.key(connection)
        connections.setDeadline(key, .now + .seconds(configuration.limits.bodyDeadlineSeconds))
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
        if state.error != nil {
            // Decided from the raw target already (414).
        } else if method == nil {
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
        state.clientAddress = connections.address(key)
        if state.error == nil, let method {
            switch routes.match(method, path: path) {
            case .found(let route, let parameters):
                state.route = route
                state.limit = route.options.bodyLimit ?? configuration.defaultBodyLimit
                state.request = HTTPRequest(method: method, path: String(path), query: query, headers: headers,
                                            requestID: state.requestID, pathParameters: parameters,
                                            clientAddress: connections.address(key))
            case .methodNotAllowed(let allowed):
                state.error = .methodNotAllowed(allowed)
            case .notFound:
                state.error = .notFound("No resource at \(path).")
            case .malformed:
                state.error = .badRequest("A path segment contains invalid UTF-8 after percent-decoding.")
            }
        }

        // Framing the server cannot trust decides before anything else: the connection is closed after the answer,
        // so no byte of an ambiguous body is ever read as a next request.
        let framing = Self.framingError(headers)
        if let framing { state.error = framing }
        if state.error == nil, let encoding = headers["Content-Encoding"],
           encoding.trimmingCharacters(in: .whitespaces).lowercased() != "identity" {
            state.error = HTTPError(status: 415, code: "unsupported_content_encoding",
                                    detail: "Request bodies must not be content-encoded (got '\(encoding)').",
                                    errors: [FieldError(field: "Content-Encoding", message: "must be absent or identity")])
        }
        // Authentication from the headers alone, before the body is read.
        if state.error == nil, let authorize = state.route?.options.authorize, let request = state.request {
            do {
                let authorization = try authorize(request)
                state.request?.authorization = authorization
                state.actor = (authorization as? any AccessLogActor)?.actorDescription
            } catch let error as HTTPError {
                state.error = error
            } catch {
                reportInternalError(error, context: "authorising request \(state.requestID)")
                state.error = .internalError(state.requestID)
            }
        }
        // Refuse an oversized body before reading a byte of it. An earlier error keeps precedence over the size.
        let declared = headers["Content-Length"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        if state.error == nil, let declared, declared > state.limit {
            state.error = .payloadTooLarge(limit: state.limit)
        }
        // With a body on the way, an error known now is answered now (MHD then skips `100 Continue`), and the
        // connection closes after a lingering drain of the unread body; without one, `finish` answers it.
        let hasBody = (declared ?? 0) > 0 || headers.contains("Transfer-Encoding")
        if let error = state.error, hasBody || framing != nil {
            return send(connection, state, error.problemResponse(requestID: state.requestID), closing: true)
        }
        if state.error == nil, state.route?.options.spoolToDisk == true {
            openSpool(state)
        }
        return .YES
    }

    /// Two different `Content-Length`s, or one beside `Transfer-Encoding` (a request-smuggling shape): 400;
    /// a transfer coding other than a lone `chunked`: 501.
    static func framingError(_ headers: HTTPHeaders) -> HTTPError? {
        let lengths = Set(headers.values("Content-Length").flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) })
        let codings = headers.values("Transfer-Encoding").flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if lengths.count > 1 || (!lengths.isEmpty && !codings.isEmpty)
            || lengths.contains(where: { Int($0).map { $0 < 0 } ?? true }) {
            return HTTPError.badRequest("The request's length is ambiguous: Content-Length must be one number, "
                                        + "and not be sent with Transfer-Encoding.", code: "invalid_framing",
                                        errors: [FieldError(field: "Content-Length", message: "must be a single length")])
        }
        if !codings.isEmpty && codings != ["chunked"] {
            return HTTPError(status: 501, code: "unsupported_transfer_encoding",
                             detail: "Only the chunked transfer coding is supported.",
                             errors: [FieldError(field: "Transfer-Encoding", message: "must be chunked")])
        }
        return nil
    }

    /// Over `maxTargetLength`, or more than `maxQueryParameters` query parameters: answered 414 from the raw
    /// target, before MHD parses the query.
    func targetIsOversized(_ target: String) -> Bool {
        let limits = configuration.limits
        if target.utf8.count > limits.maxTargetLength { return true }
        guard let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return false }
        var parameters = 0
        var empty = true
        for c in target.utf8[target.utf8.index(after: q)...] {
            if c == UInt8(ascii: "&") {
                if !empty { parameters += 1 }
                empty = true
            } else {
                empty = false
            }
        }
        if !empty { parameters += 1 }
        return parameters > limits.maxQueryParameters
    }

    func oversizedTargetError() -> HTTPError {
        let limits = configuration.limits
        return HTTPError(status: 414, code: "uri_too_long",
                         detail: "The request target exceeds \(limits.maxTargetLength) bytes or "
                             + "\(limits.maxQueryParameters) query parameters.")
    }

    /// The dictionary key of an MHD connection (its address).
    static func key(_ connection: OpaquePointer) -> UInt {
        UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(connection)))
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
        // The body is complete: the deadline bounded the client, not the handler's work that follows.
        connections.setDeadline(Self.key(connection), nil)
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
            if let completedMeanwhile = poll.suspend(connection, fd: fleetadapt_mhd_connection_fd(connection)) {
                return send(connection, state, completedMeanwhile)
            }
            state.stage = .suspended
            // A parked poll has its own timeout; the request deadline no longer applies.
            connections.setDeadline(Self.key(connection), nil)
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

    /// `closing`: the body was not read, so the connection closes after the answer, lingering (see `Lingerer`).
    private func send(_ connection: OpaquePointer, _ state: ConnectionState, _ response: HTTPResponse,
                      closing: Bool = false) -> MHD_Result {
        state.stage = .responded
        state.lingers = closing
        connections.setDeadline(Self.key(connection), nil)
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
        if closing || shuttingDown.load(ordering: .relaxed) {
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

    /// MHD is done with the request (sent, aborted or daemon stopping). `cleanly`: the response was sent whole.
    func completed(_ state: ConnectionState, connection: OpaquePointer?, cleanly: Bool) {
        closeSpool(state, delete: true)
        if let connection {
            let key = Self.key(connection)
            if state.lingers && cleanly, let fd = connections.duplicateSocket(key) {
                lingerer.linger(fd)
            }
            // A kept-alive connection must bring its next request's headers within a deadline too; it is as long
            // as MHD's idle timeout, so a client reusing an idle connection is not cut sooner than before.
            let idle = max(configuration.limits.headerDeadlineSeconds, configuration.connectionTimeoutSeconds)
            connections.setDeadline(key, .now + .seconds(idle))
        }
        if let poll = state.poll {
            poll.finished(delivered: cleanly)
            _ = parked.withLock { $0.removeValue(forKey: ObjectIdentifier(poll)) }
        }
        if configuration.accessLogEntries != nil || configuration.accessLog != nil {
            let elapsed = ContinuousClock.now - state.started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let actor = state.actor ?? (state.request?.authorization as? any AccessLogActor)?.actorDescription
            let entry = AccessLogEntry(
                method: Self.escapingControlCharacters(state.methodName), route: state.route?.pattern ?? "-",
                unmatchedPath: state.route == nil ? Self.escapingControlCharacters(String(state.path)) : nil,
                status: state.status, bytes: state.bytesSent, seconds: seconds, requestID: state.requestID,
                client: state.clientAddress ?? state.request?.clientAddress, actor: actor.map(Self.escapingControlCharacters))
            if let entries = configuration.accessLogEntries {
                entries(entry)
            } else if let log = configuration.accessLog {
                var text = entry
                text.unmatchedPath = Self.escapingControlCharacters(String(state.path))
                log(text.textLine)
            }
        }
        inFlight.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Control characters (and the backslash) as `\\xHH`, so a request line cannot forge or garble log lines.
    static func escapingControlCharacters(_ line: String) -> String {
        guard line.utf8.contains(where: { $0 < 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "\\") }) else { return line }
        var out = ""
        for scalar in line.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\\" || (0x80...0x9F).contains(scalar.value) {
                out += "\\x" + String(format: "%02X", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Shuts down connections past their deadline, every half second, for as long as the core lives.
    func scheduleSweep() {
        timerQueue.asyncAfter(deadline: .now() + .milliseconds(500)) { [weak self] in
            guard let self else { return }
            self.connections.sweep(now: .now)
            self.scheduleSweep()
        }
    }

    /// Answers every parked long-poll with its timeout response (shutdown).
    func expireAllParked() {
        let polls = parked.withLock { Array($0.values) }
        for poll in polls { poll.expire() }
    }
}
