import Foundation
import Synchronization
import Testing
import TestSupport
@testable import HTTPServer

/// Parked polls by the `id` query item, so a test can complete a specific request from its own thread.
final class Waiters: Sendable {
    private let polls = Mutex<[String: LongPoll]>([:])

    func park(_ id: String, _ poll: LongPoll) { polls.withLock { $0[id] = poll } }
    func poll(_ id: String) -> LongPoll? { polls.withLock { $0[id] } }
    var count: Int { polls.withLock { $0.count } }

    func waitFor(count expected: Int, seconds: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while count < expected && Date() < deadline { usleep(2_000) }
        return count >= expected
    }
}

@Suite(.serialized) struct LongPollTests {
    static func router(_ waiters: Waiters, timeout: Duration = .seconds(30)) -> Router {
        let router = Router()
        router.addLongPoll(.GET, "/poll") { request, poll in
            let id = request.query["id"] ?? "?"
            if request.query["now"] != nil { return .text("immediate \(id)") }
            poll.wait(timeout: timeout) { .text("timeout \(id)", status: 202) }
            waiters.park(id, poll)
            return nil
        }
        router.add(.GET, "/slow") { _ in
            waiters.park("slow", LongPoll())
            usleep(400_000)
            return .text("slow done")
        }
        return router
    }

    @Test func completedFromAnotherThreadAnswersPromptly() throws {
        let waiters = Waiters()
        try withServer(Self.router(waiters)) { _, port in
            let fd = try RawHTTPClient.connect(port: port)
            defer { close(fd) }
            RawHTTPClient.send(fd, Array(RawHTTPClient.requestBytes("GET", "/poll?id=a")))
            #expect(waiters.waitFor(count: 1))
            let started = ContinuousClock.now
            let poll = try #require(waiters.poll("a"))
            DispatchQueue.global().async {
                #expect(poll.complete(.text("done a")))
            }
            let response = try RawHTTPClient.parse(RawHTTPClient.readAll(fd))
            #expect(response.status == 200)
            #expect(response.text == "done a")
            #expect(response.headers["X-Request-Id"] != nil)
            #expect(ContinuousClock.now - started < .seconds(2))
            #expect(poll.isCompleted)
            #expect(!poll.complete(.text("second")), "first completion wins")

            let immediate = try RawHTTPClient.request(port: port, "GET", "/poll?id=b&now=1")
            #expect(immediate.text == "immediate b")
        }
    }

    @Test func timesOutWithTheTimeoutResponse() throws {
        let waiters = Waiters()
        try withServer(Self.router(waiters, timeout: .milliseconds(300))) { _, port in
            let started = ContinuousClock.now
            let response = try RawHTTPClient.request(port: port, "GET", "/poll?id=t")
            let elapsed = ContinuousClock.now - started
            #expect(response.status == 202)
            #expect(response.text == "timeout t")
            #expect(elapsed >= .milliseconds(280))
            #expect(elapsed < .seconds(3))
            let poll = try #require(waiters.poll("t"))
            #expect(!poll.complete(.text("late")), "a timed-out poll cannot be completed again")
        }
    }

    @Test func twoHundredConcurrentPollsAllComplete() throws {
        let waiters = Waiters()
        try withServer(Self.router(waiters)) { _, port in
            let sockets = try (0..<200).map { i in
                let fd = try RawHTTPClient.connect(port: port)
                RawHTTPClient.send(fd, RawHTTPClient.requestBytes("GET", "/poll?id=\(i)"))
                return fd
            }
            defer { sockets.forEach { close($0) } }
            #expect(waiters.waitFor(count: 200))
            // Complete from several threads at once, in a shuffled order.
            let ids = (0..<200).shuffled()
            DispatchQueue.concurrentPerform(iterations: 4) { part in
                for i in ids[(part * 50)..<(part * 50 + 50)] {
                    _ = waiters.poll(String(i))?.complete(.text("done \(i)"))
                }
            }
            var answered = 0
            for (i, fd) in sockets.enumerated() {
                let response = try RawHTTPClient.parse(RawHTTPClient.readAll(fd))
                if response.status == 200 && response.text == "done \(i)" { answered += 1 }
            }
            #expect(answered == 200)
        }
    }

    @Test func pollCompletedBeforeTheHandlerReturnsIsAnsweredWithoutSuspending() throws {
        let router = Router()
        router.addLongPoll(.GET, "/race") { _, poll in
            poll.wait(timeout: .seconds(30)) { .text("timeout") }
            poll.complete(.text("early"))
            return nil
        }
        try withServer(router) { _, port in
            let started = ContinuousClock.now
            let response = try RawHTTPClient.request(port: port, "GET", "/race")
            #expect(response.text == "early")
            #expect(ContinuousClock.now - started < .seconds(2))
        }
    }

    @Test func gracefulShutdownAnswersParkedPollsAndLetsSlowRequestsFinish() throws {
        let waiters = Waiters()
        var configuration = HTTPServerConfiguration(port: 0, threadPoolSize: 2, accessLog: nil)
        configuration.connectionTimeoutSeconds = 10
        let server = HTTPServer(configuration: configuration, router: Self.router(waiters))
        try server.start()
        let port = server.boundPort
        let pollSocket = try RawHTTPClient.connect(port: port)
        let slowSocket = try RawHTTPClient.connect(port: port)
        defer {
            close(pollSocket)
            close(slowSocket)
        }
        RawHTTPClient.send(pollSocket, RawHTTPClient.requestBytes("GET", "/poll?id=s"))
        RawHTTPClient.send(slowSocket, RawHTTPClient.requestBytes("GET", "/slow"))
        #expect(waiters.waitFor(count: 2))

        let started = ContinuousClock.now
        server.shutdown(gracePeriod: .seconds(5))
        let took = ContinuousClock.now - started
        #expect(took < .seconds(4), "shutdown waits for in-flight work, not for the grace period")

        let polled = try RawHTTPClient.parse(RawHTTPClient.readAll(pollSocket))
        #expect(polled.status == 202)
        #expect(polled.text == "timeout s")
        let slow = try RawHTTPClient.parse(RawHTTPClient.readAll(slowSocket))
        #expect(slow.status == 200)
        #expect(slow.text == "slow done")
        #expect(throws: (any Error).self) { try RawHTTPClient.connect(port: port) }
        server.shutdown()  // idempotent
    }

    @Test func abandonedRequestsAreAllReleased() throws {
        let waiters = Waiters()
        let router = Self.router(waiters, timeout: .milliseconds(200))
        router.add(.POST, "/upload") { request in .text("\(request.body.count)") }
        try withServer(router) { server, port in
            // A client that parks a poll and hangs up, one that dies mid-body, one that is refused by size.
            let parked = try RawHTTPClient.connect(port: port)
            RawHTTPClient.send(parked, RawHTTPClient.requestBytes("GET", "/poll?id=gone"))
            #expect(waiters.waitFor(count: 1))
            close(parked)
            let partial = try RawHTTPClient.connect(port: port)
            RawHTTPClient.send(partial, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
            usleep(50_000)
            close(partial)
            _ = try RawHTTPClient.request(port: port, "POST", "/upload", body: [UInt8](repeating: 0, count: 2 << 20))
            let deadline = ContinuousClock.now + .seconds(5)
            while server.inFlightRequests > 0 && ContinuousClock.now < deadline { usleep(5_000) }
            #expect(server.inFlightRequests == 0)
            #expect(waiters.poll("gone")?.isCompleted == true)
            #expect(try RawHTTPClient.request(port: port, "POST", "/upload", body: [1, 2, 3]).text == "3")
        }
    }

    @Test func standaloneLongPollTimesOutThroughExpire() {
        let poll = LongPoll(timeout: .seconds(1)) { .text("late", status: 204) }
        #expect(poll.deadline > .now)
        poll.expire()
        #expect(poll.isCompleted)
        #expect(poll.takeResponse()?.status == 204)
        #expect(!poll.complete(.noContent))
    }
}
