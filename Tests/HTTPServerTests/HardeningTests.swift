import Foundation
import Synchronization
import Testing
import TestSupport
@testable import HTTPServer

/// What a hostile or sloppy client can do to the server over loopback: slow connections, ambiguous framing,
/// oversized targets, bodies it should not have sent, and what must never run (HEAD on a long-poll).
@Suite(.serialized) struct HardeningTests {
    static let bodySeen = Atomic<Int>(0)

    static func router() -> Router {
        let router = Router()
        router.add(.GET, "/healthz") { _ in .text("ok\n") }
        router.add(.GET, "/hello") { request in .text("hello \(request.clientAddress ?? "?")") }
        router.add(.POST, "/small", options: RouteOptions(bodyLimit: 1024)) { request in
            .text("got \(request.body.count)")
        }
        let guarded = RouteOptions(bodyLimit: 32 << 20, spoolToDisk: true, authorize: { request in
            guard request.bearerToken == "let-me-in" else { throw HTTPError.unauthorized("no") }
            return "caller-1"
        })
        router.add(.PUT, "/guarded", options: guarded) { request in
            Self.bodySeen.add(1, ordering: .sequentiallyConsistent)
            return .text("\(request.authorization as? String ?? "-") \(try request.bodyBytes().count)")
        }
        return router
    }

    /// Lets this process hold a few thousand sockets (both ends of every test connection live here).
    static func raiseOpenFileLimit(to wanted: rlim_t) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < wanted else { return }
        limit.rlim_cur = min(wanted, limit.rlim_max)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Reads until the peer closes or `seconds` pass; true when it closed.
    static func closedByPeer(_ fd: Int32, within seconds: Int) -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == 0 { return true }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK { return true }
        }
        return false
    }

    // MARK: - Item 5: slow connections, deadlines, per-address limit, authorisation before the body

    @Test func elevenHundredSlowConnectionsLeaveHealthzAnswering() throws {
        Self.raiseOpenFileLimit(to: 8192)
        try withServer(Self.router(), configure: { $0.limits.headerDeadlineSeconds = 3 }) { _, port in
            // 1,100 connections from 127.0.0.2, each sending its request head one byte at a time.
            var slow: [Int32] = []
            defer { for fd in slow { close(fd) } }
            for _ in 0..<1100 {
                guard let fd = try? RawHTTPClient.connect(port: port, timeoutSeconds: 2, source: "127.0.0.2") else { continue }
                slow.append(fd)
            }
            let head = Array("GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: ".utf8)
            var answered = false
            // Bounded: one byte per connection every 100 ms for about 2 s, with a normal client asking meanwhile.
            for round in 0..<20 {
                for fd in slow {
                    var byte = head[min(round, head.count - 1)]
                    _ = Foundation.send(fd, &byte, 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                }
                if round == 10 {
                    let health = try RawHTTPClient.exchange(port: port, raw: RawHTTPClient.requestBytes("GET", "/healthz"))
                    #expect(health.status == 200)
                    answered = health.status == 200
                }
                usleep(100_000)
            }
            #expect(answered)
            // Trickling does not extend the header deadline: a connection that got in is closed by the server.
            let sample = slow.prefix(20)
            let closed = sample.filter { Self.closedByPeer($0, within: 30) }.count
            #expect(closed == sample.count, "\(closed) of \(sample.count) slow connections were closed")
            #expect(try RawHTTPClient.request(port: port, "GET", "/healthz").status == 200)
        }
    }

    @Test func aTrickledBodyIsCutAtTheBodyDeadline() throws {
        try withServer(Self.router(), configure: { $0.limits.bodyDeadlineSeconds = 2 }) { _, port in
            let fd = try RawHTTPClient.connect(port: port)
            defer { close(fd) }
            RawHTTPClient.send(fd, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            // One byte every 100 ms keeps MHD's 30 s idle timer from ever firing; the deadline still does.
            var cut = false
            for _ in 0..<300 where !cut {
                var byte = UInt8(ascii: "a")
                if Foundation.send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) < 0 { cut = true }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 100) > 0 { cut = true }
            }
            #expect(cut)
        }
    }

    @Test func perAddressLimitRefusesTheExcessButNotOtherClients() throws {
        try withServer(Self.router(), configure: { $0.limits.maxConnectionsPerAddress = 8 }) { _, port in
            var held: [Int32] = []
            defer { for fd in held { close(fd) } }
            for _ in 0..<8 {
                let fd = try RawHTTPClient.connect(port: port, source: "127.0.0.3")
                held.append(fd)
                // connect() returns once the kernel has the connection; a served keep-alive request proves the server
                // has accepted it and counts it against the address.
                RawHTTPClient.send(fd, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                #expect(try RawHTTPClient.readOneResponse(fd).status == 200)
            }
            // The ninth from the same address is accepted by the kernel and closed by the server at once.
            let ninth = try RawHTTPClient.connect(port: port, source: "127.0.0.3")
            defer { close(ninth) }
            RawHTTPClient.send(ninth, RawHTTPClient.requestBytes("GET", "/hello"))
            #expect(RawHTTPClient.readAll(ninth).isEmpty)
            // Another address is served, and the handler sees who it is.
            let other = try RawHTTPClient.request(port: port, "GET", "/hello")
            #expect(other.text == "hello 127.0.0.1")
        }
    }

    @Test func authorisationIsDecidedBeforeTheBodyIsRead() throws {
        let spool = NSTemporaryDirectory() + "hardening-spool-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: spool) }
        try withServer(Self.router(), configure: { $0.spoolDirectory = spool }) { _, port in
            // Declares 15 MiB and sends none of it: the 401 must come from the headers alone.
            let fd = try RawHTTPClient.connect(port: port, timeoutSeconds: 10)
            defer { close(fd) }
            RawHTTPClient.send(fd, "PUT /guarded HTTP/1.1\r\nHost: x\r\nContent-Length: \(15 << 20)\r\n\r\n")
            let refused = try RawHTTPClient.parse(RawHTTPClient.readAll(fd))
            #expect(refused.status == 401)
            #expect(refused.headers["Connection"] == "close")
            #expect(try refused.json()["code"] as? String == "unauthorized")
            #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)
            #expect(Self.bodySeen.load(ordering: .sequentiallyConsistent) == 0)

            let allowed = try RawHTTPClient.request(port: port, "PUT", "/guarded", headers: [("Authorization", "Bearer let-me-in")],
                                                    body: [UInt8](repeating: 7, count: 1000))
            #expect(allowed.text == "caller-1 1000")
        }
    }

    // MARK: - Item 19: an early answer reaches a client that sends the whole body first

    @Test func earlyAnswersReachClientsThatSendTheWholeBodyFirst() throws {
        try withServer(Self.router()) { _, port in
            for (target, headers, status) in [("/small", [(String, String)](), 413),
                                              ("/guarded", [("Authorization", "Bearer wrong")], 401)] {
                let fd = try RawHTTPClient.connect(port: port, timeoutSeconds: 30)
                defer { close(fd) }
                // Far more than the socket buffers hold: without a lingering close the server's close would reset
                // the connection while this client is still writing, and it would never read the answer.
                let body = [UInt8](repeating: 65, count: 16 << 20)
                let method = target == "/small" ? "POST" : "PUT"
                let raw = RawHTTPClient.requestBytes(method, target, headers: headers, body: body)
                let sentWhole = RawHTTPClient.send(fd, raw)
                #expect(sentWhole, "the whole body was sent")
                let response = try RawHTTPClient.parse(RawHTTPClient.readAll(fd))
                #expect(response.status == status)
            }
            #expect(try RawHTTPClient.request(port: port, "GET", "/healthz").status == 200)
        }
    }

    // MARK: - Item 8: framing, encodings, targets, logs, HEAD

    @Test func conflictingContentLengthsAre400AndTheSmuggledRequestIsNeverAnswered() throws {
        try withServer(Self.router()) { _, port in
            let fd = try RawHTTPClient.connect(port: port, timeoutSeconds: 10)
            defer { close(fd) }
            // With the first length, "GET /hello ..." would be read as a second request.
            let smuggled = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
            RawHTTPClient.send(fd, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: \(2 + smuggled.utf8.count)\r\n\r\nab" + smuggled)
            let text = String(decoding: RawHTTPClient.readAll(fd), as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 400"), "\(text)")
            #expect(text.contains("invalid_framing"))
            #expect(text.components(separatedBy: "HTTP/1.1 ").count == 2, "exactly one response: \(text)")

            let both = try RawHTTPClient.exchange(port: port, raw: Array(
                "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8))
            #expect(both.status == 400)
        }
    }

    @Test func unsupportedTransferCodingIs501AtOnce() throws {
        try withServer(Self.router()) { _, port in
            // No body follows: only an answer from the headers arrives before the 10 s receive timeout.
            let response = try RawHTTPClient.answerToHead(port: port, "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                                                          timeoutSeconds: 10)
            #expect(response.status == 501)
            #expect(try response.json()["code"] as? String == "unsupported_transfer_encoding")
        }
    }

    @Test func encodedBodiesAre415() throws {
        try withServer(Self.router()) { _, port in
            let gzip = try RawHTTPClient.request(port: port, "POST", "/small", headers: [("Content-Encoding", "gzip")],
                                                 body: [0x1f, 0x8b, 0x08, 0x00])
            #expect(gzip.status == 415)
            #expect(try gzip.json()["code"] as? String == "unsupported_content_encoding")
            let identity = try RawHTTPClient.request(port: port, "POST", "/small", headers: [("Content-Encoding", "identity")],
                                                     body: [1, 2, 3])
            #expect(identity.text == "got 3")
        }
    }

    @Test func tooManyQueryParametersOrTooLongATargetAre414AtOnce() throws {
        try withServer(Self.router()) { _, port in
            let many = (0..<500).map { "p\($0)=\($0)" }.joined(separator: "&")
            let fd = try RawHTTPClient.connect(port: port, timeoutSeconds: 10)
            defer { close(fd) }
            // MHD's idle timeout is 30 s; the answer must come before the 10 s receive timeout.
            RawHTTPClient.send(fd, RawHTTPClient.requestBytes("GET", "/hello?" + many))
            let response = try RawHTTPClient.parse(RawHTTPClient.readAll(fd))
            #expect(response.status == 414)
            #expect(try response.json()["code"] as? String == "uri_too_long")

            let long = try RawHTTPClient.request(port: port, "GET", "/hello?x=" + String(repeating: "a", count: 9000))
            #expect(long.status == 414)
            let fine = try RawHTTPClient.request(port: port, "GET", "/hello?" + (0..<60).map { "p\($0)=1" }.joined(separator: "&"))
            #expect(fine.status == 200)
        }
    }

    @Test func controlBytesInTheRequestLineAreEscapedInTheLog() throws {
        let lines = Mutex<[String]>([])
        try withServer(Self.router(), configure: { configuration in
            configuration.accessLog = { line in lines.withLock { $0.append(line) } }
        }) { _, port in
            _ = try? RawHTTPClient.exchange(port: port, raw: Array("GET /nope\u{1b}[2J\u{7f}x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            for _ in 0..<400 where lines.withLock({ $0.isEmpty }) { usleep(5_000) }
        }
        let logged = lines.withLock { $0 }
        #expect(logged.contains { $0.contains("/nope\\x1B[2J\\x7Fx") }, "\(logged)")
        for line in logged {
            #expect(!line.utf8.contains { $0 < 0x20 || $0 == 0x7F }, "\(line.debugDescription)")
        }
        #expect(ServerCore.escapingControlCharacters("GET /a\u{1b}\n\\b") == "GET /a\\x1B\\x0A\\x5Cb")
        #expect(ServerCore.escapingControlCharacters("GET /caf\u{e9}") == "GET /caf\u{e9}")
    }

    @Test func headNeverRunsALongPoll() throws {
        let ran = Atomic<Int>(0)
        let router = Router()
        router.addLongPoll(.GET, "/next") { _, _ in
            ran.add(1, ordering: .sequentiallyConsistent)
            return .text("job")
        }
        router.add(.GET, "/plain") { _ in .text("plain") }
        try withServer(router) { _, port in
            let head = try RawHTTPClient.request(port: port, "HEAD", "/next")
            #expect(head.status == 405)
            #expect(head.headers["Allow"] == "GET")
            #expect(ran.load(ordering: .sequentiallyConsistent) == 0)
            #expect(try RawHTTPClient.request(port: port, "GET", "/next").text == "job")
            #expect(try RawHTTPClient.request(port: port, "HEAD", "/plain").status == 200)
        }
        #expect(router.respond(to: HTTPRequest(method: .HEAD, path: "/next")).status == 405)
    }

    // MARK: - Item 13: a parked poll knows when its client has gone

    @Test func aParkedPollSeesItsClientGo() throws {
        let parked = Mutex<LongPoll?>(nil)
        let router = Router()
        router.addLongPoll(.GET, "/wait") { _, poll in
            poll.wait(timeout: .seconds(30)) { .noContent }
            parked.withLock { $0 = poll }
            return nil
        }
        try withServer(router) { _, port in
            let fd = try RawHTTPClient.connect(port: port)
            RawHTTPClient.send(fd, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
            var poll: LongPoll?
            for _ in 0..<2000 where poll == nil {
                poll = parked.withLock { $0 }
                usleep(5_000)
            }
            let waiting = try #require(poll)
            usleep(100_000)
            #expect(!waiting.clientHasGone)
            close(fd)
            var gone = false
            for _ in 0..<2000 where !gone {
                gone = waiting.clientHasGone
                usleep(5_000)
            }
            #expect(gone)
            #expect(waiting.complete(.text("too late")))
        }
    }
}

extension HardeningTests {
    /// A long-poll answer that MHD could not send (the client reset the connection) is reported, so work handed
    /// out in it can be given back; one that was sent is not.
    @Test func anUndeliveredLongPollAnswerIsReported() throws {
        let parked = Mutex<[LongPoll]>([])
        let router = Router()
        router.addLongPoll(.GET, "/wait") { _, poll in
            poll.wait(timeout: .seconds(30)) { .noContent }
            parked.withLock { $0.append(poll) }
            return nil
        }
        try withServer(router) { _, port in
            func park() throws -> (Int32, LongPoll) {
                let before = parked.withLock { $0.count }
                let fd = try RawHTTPClient.connect(port: port)
                RawHTTPClient.send(fd, "GET /wait HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                for _ in 0..<2000 where parked.withLock({ $0.count }) == before { usleep(5_000) }
                return (fd, try #require(parked.withLock { $0.count > before ? $0.last : nil }))
            }
            let undelivered = Atomic<Int>(0)
            let (kept, keptPoll) = try park()
            defer { close(kept) }
            let keptCompleted = keptPoll.complete(.text("job"), ifUndelivered: { undelivered.add(1, ordering: .sequentiallyConsistent) })
            #expect(keptCompleted)
            #expect(try RawHTTPClient.parse(RawHTTPClient.readAll(kept)).text == "job")

            let (reset, resetPoll) = try park()
            var hardClose = linger(l_onoff: 1, l_linger: 0)
            setsockopt(reset, SOL_SOCKET, SO_LINGER, &hardClose, socklen_t(MemoryLayout<linger>.size))
            close(reset)  // RST: the server's write of the answer fails
            usleep(100_000)
            let resetCompleted = resetPoll.complete(.text("job"), ifUndelivered: { undelivered.add(10, ordering: .sequentiallyConsistent) })
            #expect(resetCompleted)
            for _ in 0..<2000 where undelivered.load(ordering: .sequentiallyConsistent) == 0 { usleep(5_000) }
            #expect(undelivered.load(ordering: .sequentiallyConsistent) == 10)
        }
    }
}

/// `If-Match` (RFC 9110 §13.1.1): strong comparison, lists, `*`, and anything else fails.
@Suite struct IfMatchTests {
    func condition(_ values: String...) -> IfMatch? {
        IfMatch(HTTPHeaders(values.map { ("If-Match", $0) }))
    }

    @Test func absentFieldAlwaysHolds() {
        #expect(IfMatch(HTTPHeaders()) == .absent)
        #expect(IfMatch.absent.matches(current: "\"v1\""))
        #expect(IfMatch.absent.matches(current: nil))
    }

    @Test func strongTagsMatchOnlyTheSameStrongTag() throws {
        let v1 = try #require(condition("\"v1\""))
        #expect(v1.matches(current: "\"v1\""))
        #expect(!v1.matches(current: "\"v2\""))
        #expect(!v1.matches(current: nil))
        #expect(try #require(condition("\"stale-etag\"")).matches(current: "\"v1\"") == false)
        // Weak tags never match under strong comparison, not even the same opaque tag.
        #expect(try #require(condition("W/\"v1\"")).matches(current: "\"v1\"") == false)
    }

    @Test func listsMatchWhenAnyMemberMatches() throws {
        let list = try #require(condition("\"v1\", \"v2\""))
        #expect(list == .tags(["\"v1\"", "\"v2\""]))
        #expect(list.matches(current: "\"v2\""))
        #expect(!list.matches(current: "\"v3\""))
        #expect(try #require(condition("\"a,b\" ,W/\"v3\",\"v3\"")).matches(current: "\"v3\""))
        #expect(try #require(condition("\"v1\"", "\"v4\"")).matches(current: "\"v4\""), "repeated fields form one list")
    }

    @Test func starMatchesAnyExistingResource() throws {
        let star = try #require(condition("*"))
        #expect(star == .anyExisting)
        #expect(star.matches(current: "\"v9\""))
        #expect(!star.matches(current: nil))
    }

    @Test func malformedValuesAreNil() {
        for bad in ["garbage", "\"unterminated", "v1", "\"v1\" junk", "*, \"v1\"", "\"a\"b\"", ""] {
            #expect(condition(bad) == nil, "\(bad)")
        }
    }
}

/// U+0000 in any JSON string of a request body is a 422 naming the field.
@Suite struct NULInJSONTests {
    struct Body: Decodable {
        var name: String
        var items: [Item]?
        struct Item: Decodable { var key: String }
    }

    func decode(_ json: String) throws -> Body {
        try HTTPRequest(method: .POST, path: "/", body: Array(json.utf8)).decodeJSON(Body.self)
    }

    @Test func nulIsRefusedWithItsFieldPath() {
        for (json, field) in [(#"{"name": "x\u0000y"}"#, "name"),
                              (#"{"name": "ok", "items": [{"key": "a"}, {"key": "\u0000"}]}"#, "items.1.key"),
                              (#"{"name": "ok", "progress": {"st\u0000ep": 1}}"#, "progress.st\\u0000ep")] {
            do {
                _ = try decode(json)
                Issue.record("\(json) was accepted")
            } catch let error as HTTPError {
                #expect(error.status == 422, "\(json)")
                #expect(error.errors.map(\.field) == [field], "\(json)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test func anEscapedBackslashBeforeU0000IsText() throws {
        #expect(try decode(#"{"name": "x\\u0000y"}"#).name == "x\\u0000y")
        #expect(try decode(#"{"name": "\u0041"}"#).name == "A")
    }
}
