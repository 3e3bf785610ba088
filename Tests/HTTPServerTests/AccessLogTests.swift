import CommandSupport
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
@testable import HTTPServer

/// One access entry per request over real libmicrohttpd: the route's pattern (not the path with its ids), the
/// status, bytes, request id, client address and the actor from `authorize`, and the rendered JSON/logfmt lines.
@Suite(.serialized) struct AccessLogTests {
    struct Operator: AccessLogActor {
        var actorDescription: String { "key:k-1 (ci)" }
    }

    @Test func oneEntryPerRequestWithRouteTemplateAndActor() throws {
        let router = Router()
        router.add(.GET, "/v1/things/{id}", options: RouteOptions(authorize: { _ in Operator() })) { _ in .text("thing") }
        router.add(.GET, "/plain") { _ in .text("plain") }
        let entries = Mutex<[AccessLogEntry]>([])
        try withServer(router, configure: { $0.accessLogEntries = { entry in entries.withLock { $0.append(entry) } } }) { _, port in
            let a = try RawHTTPClient.request(port: port, "GET", "/v1/things/42", headers: [("X-Request-Id", "req-a")])
            let b = try RawHTTPClient.request(port: port, "GET", "/plain", headers: [("X-Request-Id", "req-b")])
            let c = try RawHTTPClient.request(port: port, "GET", "/nowhere/7")
            #expect(a.status == 200 && b.status == 200 && c.status == 404)
            let deadline = Date().addingTimeInterval(30)
            while entries.withLock({ $0.count }) < 3 && Date() < deadline { usleep(10_000) }
        }
        let all = entries.withLock { $0 }
        #expect(all.count == 3)
        let thing = try #require(all.first { $0.requestID == "req-a" })
        #expect(thing.method == "GET" && thing.route == "/v1/things/{id}" && thing.status == 200)
        #expect(thing.unmatchedPath == nil)
        #expect(thing.bytes == 5 && thing.seconds >= 0)
        let plain = try #require(all.first { $0.requestID == "req-b" })
        #expect(plain.actor == nil && plain.route == "/plain")
        let missing = try #require(all.first { $0.status == 404 })
        #expect(missing.route == "-" && missing.unmatchedPath == "/nowhere/7")
    }

    @Test func jsonAndLogfmtLinesParse() throws {
        let metadata: Logger.Metadata = ["route": "/v1/things/{id}", "status": .stringConvertible(200), "note": "a \"quoted\"\nline"]
        let json = FleetLogHandler.render(format: .json, time: Date(), level: .info, label: "t", message: "request \u{1}", metadata: metadata)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "request \u{1}")
        #expect(object["status"] as? Int == 200)
        #expect(object["note"] as? String == "a \"quoted\"\nline")
        #expect(!json.contains("\n"))
        let logfmt = FleetLogHandler.render(format: .logfmt, time: Date(), level: .warning, label: "t", message: "two words", metadata: metadata)
        #expect(logfmt.contains(" level=warning ") && logfmt.contains(" msg=\"two words\"") && logfmt.contains(" route=/v1/things/{id}"))
        #expect(logfmt.contains(" note=\"a \\\"quoted\\\"\\nline\"") && !logfmt.contains("\n"))
    }
}
