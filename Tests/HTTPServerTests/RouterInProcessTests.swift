import Foundation
import Testing
@testable import HTTPServer

@Suite struct RouterInProcessTests {
    static func router() -> Router {
        let router = Router()
        router.add(.GET, "/items/{id}") { request in .text("item \(request.pathParameters["id"]!)") }
        router.add(.POST, "/items") { request in
            struct New: Codable { var name: String }
            return .json(try request.decodeJSON(New.self), status: 201)
        }
        router.add(.GET, "/fail") { _ in throw CocoaError(.fileNoSuchFile) }
        router.addLongPoll(.GET, "/wait") { _, poll in
            poll.wait(timeout: .milliseconds(50)) { .text("timed out", status: 202) }
            return nil
        }
        router.addLongPoll(.GET, "/soon") { _, poll in
            poll.wait(timeout: .seconds(30)) { .text("timed out") }
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(20)) { poll.complete(.text("woken")) }
            return nil
        }
        return router
    }

    @Test func dispatchesAndRendersErrorsLikeTheServer() throws {
        let router = Self.router()
        let item = router.respond(to: HTTPRequest(method: .GET, path: "/items/a%20b", requestID: "r1"))
        #expect(String(decoding: item.body, as: UTF8.self) == "item a b")
        #expect(item.headers["X-Request-Id"] == "r1")

        let head = router.respond(to: HTTPRequest(method: .HEAD, path: "/items/x"))
        #expect(head.status == 200 && head.body.isEmpty)

        let created = router.respond(to: HTTPRequest(method: .POST, path: "/items", body: Array(#"{"name":"n"}"#.utf8)))
        #expect(created.status == 201)

        let invalid = router.respond(to: HTTPRequest(method: .POST, path: "/items", body: Array("{}".utf8)))
        #expect(invalid.status == 422)
        #expect(invalid.headers["Content-Type"] == "application/problem+json")

        #expect(router.respond(to: HTTPRequest(method: .GET, path: "/nothing")).status == 404)
        let wrong = router.respond(to: HTTPRequest(method: .DELETE, path: "/items"))
        #expect(wrong.status == 405 && wrong.headers["Allow"] == "POST")

        let failed = router.respond(to: HTTPRequest(method: .GET, path: "/fail", requestID: "r2"))
        #expect(failed.status == 500)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(failed.body)) as? [String: Any])
        #expect(object["code"] as? String == "internal_error")
        #expect(object["request_id"] as? String == "r2")
    }

    @Test func longPollsWaitInProcess() {
        let router = Self.router()
        let timedOut = router.respond(to: HTTPRequest(method: .GET, path: "/wait"))
        #expect(timedOut.status == 202)
        let woken = router.respond(to: HTTPRequest(method: .GET, path: "/soon"))
        #expect(String(decoding: woken.body, as: UTF8.self) == "woken")
    }

    @Test func methodTokensParseWithoutOverreading() {
        func parse(_ s: String) -> HTTPMethod? { s.withCString { HTTPMethod(token: $0) } }
        #expect(parse("GET") == .GET)
        #expect(parse("PUT") == .PUT)
        #expect(parse("POST") == .POST)
        #expect(parse("HEAD") == .HEAD)
        #expect(parse("OPTIONS") == .OPTIONS)
        #expect(parse("G") == nil)
        #expect(parse("GETS") == nil)
        #expect(parse("get") == nil)
        #expect(parse("") == nil)
    }
}
