import Foundation
import Synchronization
import Testing
@testable import HTTPServer

struct Item: Codable, Sendable {
    var name: String
    var size: Int
}

/// A server on an ephemeral loopback port with routes exercising every feature.
final class Fixture: Sendable {
    let server: HTTPServer
    let router = Router()
    let pending = PendingPolls()
    var http: RawHTTP { RawHTTP(port: server.boundPort) }

    init() throws {
        var config = HTTPServerConfiguration()
        config.port = 0
        config.threadPoolSize = 4
        config.accessLog = nil
        let pending = self.pending
        router.add(.GET, "/items/{id}") { r in .json(["id": r.pathParameters["id"] ?? "", "q": r.query["q"] ?? ""]) }
        router.add(.GET, "/items/special") { _ in .text("literal wins") }
        router.add(.POST, "/items") { r in
            let item = try r.decodeJSON(Item.self)
            return .json(item, status: 201)
        }
        router.add(.GET, "/boom") { _ in throw CocoaError(.fileNoSuchFile) }
        router.add(.GET, "/teapot") { _ in throw HTTPError(status: 418, code: "teapot", detail: "short and stout") }
        router.add(.GET, "/slow") { _ in Thread.sleep(forTimeInterval: 0.5); return .text("done") }
        router.add(.PUT, "/upload", options: RouteOptions(bodyLimit: 8 << 20, spoolToDisk: true)) { r in
            guard let path = r.bodyFile, let data = FileManager.default.contents(atPath: path) else { return .text("no file", status: 500) }
            var sum: UInt64 = 0
            for b in data { sum = sum &* 31 &+ UInt64(b) }
            return .json(["bytes": data.count, "hash": Int(truncatingIfNeeded: sum)])
        }
        router.addLongPoll(.GET, "/wait/{key}") { r, poll in
            if r.query["now"] == "1" { return .text("immediate") }
            let ms = Int(r.query["ms"] ?? "5000") ?? 5000
            poll.wait(timeout: .milliseconds(ms)) { .text("timeout", status: 200) }
            pending.add(r.pathParameters["key"]!, poll)
            return nil
        }
        server = HTTPServer(configuration: config, router: router)
        try server.start()
    }

    deinit { server.shutdown(gracePeriod: .seconds(2)) }
}

final class PendingPolls: Sendable {
    private let polls = Mutex<[String: LongPoll]>([:])
    func add(_ key: String, _ poll: LongPoll) { polls.withLock { $0[key] = poll } }
    func take(_ key: String) -> LongPoll? { polls.withLock { $0.removeValue(forKey: key) } }
    var count: Int { polls.withLock { $0.count } }
}

@Suite struct HTTPServerTests {
    let f: Fixture
    init() throws { f = try Fixture() }

    @Test func routesWithParametersAndLiterals() throws {
        let r = try f.http.request("GET", "/items/42?q=a%20b")
        #expect(r.status == 200)
        #expect(r.json?["id"] as? String == "42")
        #expect(r.json?["q"] as? String == "a b")
        #expect(try f.http.request("GET", "/items/special").text == "literal wins")
        let head = try f.http.request("HEAD", "/items/1")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
    }

    @Test func unknownRoutesAndMethodsAreProblems() throws {
        let missing = try f.http.request("GET", "/nope")
        #expect(missing.status == 404)
        #expect(missing.headers["content-type"] == "application/problem+json")
        #expect(missing.json?["code"] as? String == "not_found")
        let wrong = try f.http.request("DELETE", "/items/1")
        #expect(wrong.status == 405)
        #expect(wrong.headers["allow"] == "GET, HEAD")
        #expect(try f.http.request("BREW", "/items/1").status == 405)
    }

    @Test func problemDocumentsHaveEveryMember() throws {
        let r = try f.http.request("GET", "/teapot", headers: ["X-Request-Id": "abc-123"])
        #expect(r.status == 418)
        #expect(r.headers["x-request-id"] == "abc-123")
        let p = try #require(r.json)
        #expect(p["type"] as? String == "https://fleetadapt.dev/problems/teapot")
        #expect(p["title"] as? String != nil)
        #expect(p["status"] as? Int == 418)
        #expect(p["detail"] as? String == "short and stout")
        #expect(p["code"] as? String == "teapot")
        #expect(p["request_id"] as? String == "abc-123")
        // An unusable client id is replaced, not echoed.
        let generated = try f.http.request("GET", "/items/1", headers: ["X-Request-Id": "bad id with spaces"])
        #expect(generated.headers["x-request-id"].map { UUID(uuidString: $0) != nil } == true)
    }

    @Test func unexpectedErrorsAre500WithoutInternalsAndTheServerGoesOn() throws {
        let r = try f.http.request("GET", "/boom")
        #expect(r.status == 500)
        #expect(r.json?["code"] as? String == "internal_error")
        #expect(!r.text.contains("fileNoSuchFile"))
        #expect(try f.http.request("GET", "/items/1").status == 200)
    }

    @Test func jsonBodiesDecodeOrNameTheField() throws {
        let ok = try f.http.request("POST", "/items", body: Array(#"{"name": "a", "size": 3}"#.utf8))
        #expect(ok.status == 201)
        let malformed = try f.http.request("POST", "/items", body: Array("{nope".utf8))
        #expect(malformed.status == 400)
        #expect(malformed.json?["code"] as? String == "invalid_json")
        let array = try f.http.request("POST", "/items", body: Array("[1]".utf8))
        #expect(array.status == 400)
        let wrongType = try f.http.request("POST", "/items", body: Array(#"{"name": "a", "size": "big"}"#.utf8))
        #expect(wrongType.status == 422)
        #expect((wrongType.json?["errors"] as? [[String: String]])?.first?["field"] == "size")
        let missing = try f.http.request("POST", "/items", body: Array(#"{"size": 1}"#.utf8))
        #expect((missing.json?["errors"] as? [[String: String]])?.first?["field"] == "name")
    }

    @Test func bodiesOverTheLimitAre413() throws {
        let big = [UInt8](repeating: 65, count: (1 << 20) + 1)
        let byLength = try f.http.request("POST", "/items", body: big)
        #expect(byLength.status == 413)
        #expect(byLength.json?["code"] as? String == "payload_too_large")
        // Chunked: no Content-Length, the server counts what streams in.
        var raw = Array("POST /items HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        let chunk = [UInt8](repeating: 66, count: 256 << 10)
        for _ in 0..<5 { raw += Array("\(String(chunk.count, radix: 16))\r\n".utf8) + chunk + Array("\r\n".utf8) }
        raw += Array("0\r\n\r\n".utf8)
        #expect(try f.http.send(raw).status == 413)
        #expect(try f.http.request("GET", "/items/1").status == 200)
    }

    @Test func uploadsSpoolToDiskByteExact() throws {
        var body = [UInt8](repeating: 0, count: 5 << 20)
        for i in body.indices { body[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 7) }
        var sum: UInt64 = 0
        for b in body { sum = sum &* 31 &+ UInt64(b) }
        let r = try f.http.request("PUT", "/upload", body: body)
        #expect(r.status == 200)
        #expect(r.json?["bytes"] as? Int == body.count)
        #expect(r.json?["hash"] as? Int == Int(truncatingIfNeeded: sum))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("fleetadapt-upload-") }
        #expect(leftovers.isEmpty)
    }

    @Test func longPollCompletedFromAnotherThread() throws {
        let port = f.server.boundPort
        let result = Mutex<RawHTTP.Response?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let r = try? RawHTTP(port: port).request("GET", "/wait/a?ms=10000")
            result.withLock { $0 = r }
            done.signal()
        }
        var poll: LongPoll?
        for _ in 0..<200 where poll == nil { poll = f.pending.take("a"); if poll == nil { Thread.sleep(forTimeInterval: 0.01) } }
        let p = try #require(poll)
        let start = ContinuousClock.now
        #expect(p.complete(.text("woken")))
        #expect(!p.complete(.text("twice")))
        #expect(done.wait(timeout: .now() + 5) == .success)
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(result.withLock { $0?.text } == "woken")
        #expect(try f.http.request("GET", "/wait/b?now=1").text == "immediate")
    }

    @Test func longPollTimesOut() throws {
        let start = ContinuousClock.now
        let r = try f.http.request("GET", "/wait/t?ms=300")
        #expect(r.text == "timeout")
        #expect(ContinuousClock.now - start >= .milliseconds(290))
    }

    @Test func twoHundredConcurrentLongPolls() throws {
        let port = f.server.boundPort
        let answers = Mutex<[String]>([])
        let group = DispatchGroup()
        for i in 0..<200 {
            group.enter()
            Thread.detachNewThread {
                if let r = try? RawHTTP(port: port).request("GET", "/wait/k\(i)?ms=20000") { answers.withLock { $0.append(r.text) } }
                group.leave()
            }
        }
        let deadline = Date().addingTimeInterval(10)
        while f.pending.count < 200 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(f.pending.count == 200)
        for i in 0..<200 { f.pending.take("k\(i)")?.complete(.text("ok\(i)")) }
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(Set(answers.withLock { $0 }) == Set((0..<200).map { "ok\($0)" }))
    }

    @Test func gracefulShutdownAnswersPollsAndFinishesInFlight() throws {
        let g = try Fixture()
        let port = g.server.boundPort
        let slow = Mutex<String?>(nil)
        let poll = Mutex<String?>(nil)
        let group = DispatchGroup()
        group.enter()
        Thread.detachNewThread { slow.withLock { $0 = try? RawHTTP(port: port).request("GET", "/slow").text }; group.leave() }
        group.enter()
        Thread.detachNewThread { poll.withLock { $0 = try? RawHTTP(port: port).request("GET", "/wait/s?ms=30000").text }; group.leave() }
        let deadline = Date().addingTimeInterval(5)
        while g.pending.count < 1 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        Thread.sleep(forTimeInterval: 0.1)
        g.server.shutdown(gracePeriod: .seconds(5))
        #expect(group.wait(timeout: .now() + 5) == .success)
        #expect(slow.withLock { $0 } == "done")
        #expect(poll.withLock { $0 } == "timeout")
        #expect(throws: (any Error).self) { try RawHTTP(port: port).request("GET", "/items/1") }
    }
}
