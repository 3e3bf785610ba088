internal import CMicroHTTPD
import Foundation

/// Per-request state, owned by MHD's `*con_cls` from the first callback to the completion callback.
/// Retain rule: `passRetained` when stored in `*con_cls`, one `release` in `requestCompleted`.
/// Only the MHD worker thread serving the connection touches it.
final class ConnectionContext {
    let started = ContinuousClock.now
    var method: HTTPMethod?
    var path = ""
    var requestID = ""
    var limit = 0
    var received = 0
    var tooLarge = false
    var body: [UInt8] = []
    var spoolPath: String?
    var spool: FileHandle?
    var longPoll: LongPoll?
    var status = 0
    var bytesSent = 0
    var server: HTTPServer?
}

/// MHD's access handler: called once with the headers, once per body chunk, once at the end
/// (and once more after a suspended connection is resumed).
let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, uploadData, uploadDataSize, conCls in
    guard let cls, let connection, let url, let method, let uploadDataSize, let conCls else { return MHD_Result.NO }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()

    guard let existing = conCls.pointee else {
        let ctx = ConnectionContext()
        ctx.server = server
        server.inFlight.add(1, ordering: .relaxed)
        conCls.pointee = Unmanaged.passRetained(ctx).toOpaque()
        ctx.path = String(cString: url)
        ctx.requestID = requestID(connection)
        guard let m = HTTPMethod(rawValue: String(cString: method)) else {
            return queue(connection, ctx, HTTPError(status: 405, code: "method_not_allowed",
                                                    detail: "Method \(String(cString: method)) is not supported.").response(requestID: ctx.requestID))
        }
        ctx.method = m
        let options = server.router.options(m, ctx.path)
        ctx.limit = options?.bodyLimit ?? server.configuration.defaultBodyLimit
        if let lengthText = header(connection, "Content-Length"), let length = Int(lengthText), length > ctx.limit {
            ctx.tooLarge = true
            return queue(connection, ctx, HTTPError.payloadTooLarge(limit: ctx.limit).response(requestID: ctx.requestID))
        }
        if options?.spoolToDisk == true {
            let path = server.configuration.spoolDirectory + "/fleetadapt-upload-" + UUID().uuidString
            if FileManager.default.createFile(atPath: path, contents: nil) {
                ctx.spoolPath = path
                ctx.spool = FileHandle(forWritingAtPath: path)
            }
        }
        return MHD_Result.YES
    }
    let ctx = Unmanaged<ConnectionContext>.fromOpaque(existing).takeUnretainedValue()

    if let poll = ctx.longPoll {
        // Resumed: the poll holds the answer.
        server.polls.remove(poll)
        let response = poll.state.withLock { $0.response } ?? HTTPResponse(status: 204)
        return queue(connection, ctx, response)
    }

    let size = uploadDataSize.pointee
    if size > 0 {
        ctx.received += size
        if ctx.received > ctx.limit { ctx.tooLarge = true }
        if !ctx.tooLarge, let uploadData {
            let chunk = UnsafeRawBufferPointer(start: uploadData, count: size)
            if let spool = ctx.spool { spool.write(Data(chunk)) } else { ctx.body.append(contentsOf: chunk) }
        }
        uploadDataSize.pointee = 0
        return MHD_Result.YES
    }
    if ctx.tooLarge {
        return queue(connection, ctx, HTTPError.payloadTooLarge(limit: ctx.limit).response(requestID: ctx.requestID))
    }
    try? ctx.spool?.close()
    ctx.spool = nil
    return dispatch(server, connection, ctx)
}

/// Routes a complete request and queues (or, for a waiting long-poll, defers) the answer.
private func dispatch(_ server: HTTPServer, _ connection: OpaquePointer, _ ctx: ConnectionContext) -> MHD_Result {
    guard let method = ctx.method else { return MHD_Result.NO }
    let (path, query) = splitQuery(ctx.path, connection)
    var request = HTTPRequest(method: method, path: path, query: query, headers: headers(connection), body: ctx.body,
                              bodyFile: ctx.spoolPath, requestID: ctx.requestID)
    switch server.router.match(method, path) {
    case .notFound:
        return queue(connection, ctx, HTTPError.notFound("No route for \(path).").response(requestID: ctx.requestID))
    case .methodNotAllowed(let allowed):
        let names = allowed.map(\.rawValue).joined(separator: ", ")
        return queue(connection, ctx, HTTPError(status: 405, code: "method_not_allowed", detail: "\(path) allows \(names).",
                                                headers: ["Allow": names]).response(requestID: ctx.requestID))
    case .found(let route, let params):
        request.pathParameters = params
        switch route.handler {
        case .plain(let handler):
            return queue(connection, ctx, run(ctx.requestID) { try handler(request) })
        case .longPoll(let handler):
            let token = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(connection)))
            let poll = LongPoll(resume: { resumeConnection(token) })
            ctx.longPoll = poll
            var immediate: HTTPResponse?
            var failed: HTTPResponse?
            do {
                immediate = try handler(request, poll)
            } catch {
                failed = render(error, ctx.requestID)
            }
            if let r = failed ?? immediate {
                poll.complete(r)
                ctx.longPoll = nil
                return queue(connection, ctx, r)
            }
            // Suspend unless a completion already arrived while the handler ran; the poll's lock orders
            // suspend before any resume.
            let answered: HTTPResponse? = poll.state.withLock { s in
                if s.phase == .completed { return s.response }
                s.phase = .suspended
                MHD_suspend_connection(connection)
                return nil
            }
            if let answered {
                ctx.longPoll = nil
                return queue(connection, ctx, answered)
            }
            server.polls.add(poll)
            return MHD_Result.YES
        }
    }
}

private func resumeConnection(_ token: UInt) {
    guard let p = UnsafeMutableRawPointer(bitPattern: token) else { return }
    MHD_resume_connection(OpaquePointer(p))
}

/// Runs a handler; every error becomes a problem, and nothing escapes to crash the worker.
private func run(_ requestID: String, _ body: () throws -> HTTPResponse) -> HTTPResponse {
    do { return try body() } catch { return render(error, requestID) }
}

private func render(_ error: any Error, _ requestID: String) -> HTTPResponse {
    if let e = error as? HTTPError { return e.response(requestID: requestID) }
    FileHandle.standardError.write(Data("error request_id=\(requestID): \(error)\n".utf8))
    return HTTPError.internalError(requestID).response(requestID: requestID)
}

/// Called by MHD when a request is done (answered, or the client went away).
let requestCompleted: MHD_RequestCompletedCallback = { cls, _, conCls, _ in
    guard let conCls, let raw = conCls.pointee else { return }
    conCls.pointee = nil
    let ctx = Unmanaged<ConnectionContext>.fromOpaque(raw).takeRetainedValue()
    if let poll = ctx.longPoll {
        ctx.server?.polls.remove(poll)
        poll.complete(HTTPResponse(status: 499))
    }
    try? ctx.spool?.close()
    if let path = ctx.spoolPath { try? FileManager.default.removeItem(atPath: path) }
    if let cls {
        Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue().inFlight.subtract(1, ordering: .relaxed)
    }
}

/// Turns an `HTTPResponse` into an MHD response, queues it, and writes the access-log line.
private func queue(_ connection: OpaquePointer, _ ctx: ConnectionContext, _ response: HTTPResponse) -> MHD_Result {
    var mhdResponse: OpaquePointer?
    var length = response.body.count
    if let path = response.filePath {
        let fd = open(path, O_RDONLY)
        var st = stat()
        if fd >= 0, fstat(fd, &st) == 0 {
            length = Int(st.st_size)
            mhdResponse = MHD_create_response_from_fd(Int(st.st_size), fd)
        } else {
            if fd >= 0 { close(fd) }
            return queue(connection, ctx, HTTPError.internalError(ctx.requestID).response(requestID: ctx.requestID))
        }
    } else if response.body.isEmpty {
        mhdResponse = MHD_create_response_from_buffer(0, nil, .RESPMEM_PERSISTENT)
    } else {
        mhdResponse = response.body.withUnsafeBytes { buf in
            MHD_create_response_from_buffer(buf.count, UnsafeMutableRawPointer(mutating: buf.baseAddress), .RESPMEM_MUST_COPY)
        }
    }
    guard let mhdResponse else { return MHD_Result.NO }
    defer { MHD_destroy_response(mhdResponse) }
    for (name, value) in response.headers { _ = MHD_add_response_header(mhdResponse, name, value) }
    _ = MHD_add_response_header(mhdResponse, "X-Request-Id", ctx.requestID)
    ctx.status = response.status
    ctx.bytesSent = length
    if let log = ctx.server?.configuration.accessLog {
        let elapsed = ContinuousClock.now - ctx.started
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        log(String(format: "%@ %@ %d %d %.2fms %@", ctx.method?.rawValue ?? "-", ctx.path, response.status, length, ms, ctx.requestID))
    }
    return MHD_queue_response(connection, UInt32(response.status), mhdResponse)
}

private func header(_ connection: OpaquePointer, _ name: String) -> String? {
    MHD_lookup_connection_value(connection, .HEADER_KIND, name).map { String(cString: $0) }
}

/// A client's `X-Request-Id` when it is sane (≤128 of [A-Za-z0-9._-]), else a fresh UUID.
private func requestID(_ connection: OpaquePointer) -> String {
    if let given = header(connection, "X-Request-Id"), (1...128).contains(given.utf8.count),
       given.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 46 || $0 == 95 }) {
        return given
    }
    return UUID().uuidString.lowercased()
}

/// Collects values of one kind through MHD's iterator; the box is passed unretained for the call's duration.
private final class ValueCollector {
    var pairs: [(String, String)] = []
}

private let collectValue: MHD_KeyValueIterator = { cls, _, key, value in
    guard let cls, let key else { return MHD_Result.YES }
    let box = Unmanaged<ValueCollector>.fromOpaque(cls).takeUnretainedValue()
    box.pairs.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return MHD_Result.YES
}

private func values(_ connection: OpaquePointer, _ kind: MHD_ValueKind) -> [(String, String)] {
    let box = ValueCollector()
    withExtendedLifetime(box) {
        _ = MHD_get_connection_values(connection, kind, collectValue, Unmanaged.passUnretained(box).toOpaque())
    }
    return box.pairs
}

private func headers(_ connection: OpaquePointer) -> HTTPHeaders {
    var h = HTTPHeaders()
    for (k, v) in values(connection, .HEADER_KIND) { h.add(k, v) }
    return h
}

/// MHD strips the query from `url` and decodes the arguments itself.
private func splitQuery(_ url: String, _ connection: OpaquePointer) -> (String, [String: String]) {
    var query: [String: String] = [:]
    for (k, v) in values(connection, .GET_ARGUMENT_KIND) { query[k] = v }
    let path = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
    return (path, query)
}
