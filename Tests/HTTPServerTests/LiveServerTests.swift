import Foundation
import Synchronization
import Testing
import TestSupport
@testable import HTTPServer

/// End-to-end over loopback through real libmicrohttpd; serialized to keep the 2-core CI machine calm.
@Suite(.serialized) struct LiveServerTests {
    struct Echo: Codable {
        var name: String
        var count: Int
    }

    static func router() -> Router {
        let router = Router()
        router.add(.GET, "/hello") { _ in .text("hello") }
        router.add(.GET, "/v1/devices/{id}") { request in
            .json(["id": request.pathParameters["id"] ?? "", "q": request.query["q"] ?? ""])
        }
        router.add(.GET, "/v1/devices/me") { _ in .text("me") }
        router.add(.DELETE, "/v1/devices/{id}") { _ in .noContent }
        router.add(.POST, "/echo") { request in
            let echo = try request.decodeJSON(Echo.self)
            return .json(echo, status: 201)
        }
        router.add(.POST, "/small", options: RouteOptions(bodyLimit: 1024)) { request in
            .text("got \(request.body.count)")
        }
        router.add(.GET, "/boom") { _ in
            struct Secret: Error { var password = "hunter2" }
            throw Secret()
        }
        router.add(.GET, "/teapot") { _ in
            throw HTTPError(status: 418, code: "teapot", detail: "short and stout", headers: ["X-Extra": "1"])
        }
        router.add(.GET, "/nan") { _ in .json(["value": Double.nan]) }
        router.add(.GET, "/whoami") { request in .text(request.bearerToken ?? "anonymous") }
        return router
    }

    @Test func routesPathParametersAndQuery() throws {
        try withServer(Self.router()) { _, port in
            let hello = try RawHTTPClient.request(port: port, "GET", "/hello")
            #expect(hello.status == 200)
            #expect(hello.text == "hello")
            #expect(hello.headers["Content-Type"] == "text/plain; charset=utf-8")

            let device = try RawHTTPClient.request(port: port, "GET", "/v1/devices/a%20b?q=x+y&q=z%21")
            #expect(device.status == 200)
            #expect(try device.json() as? [String: String] == ["id": "a b", "q": "z!"])

            #expect(try RawHTTPClient.request(port: port, "GET", "/v1/devices/me").text == "me")
            #expect(try RawHTTPClient.request(port: port, "DELETE", "/v1/devices/me").status == 204)
            #expect(try RawHTTPClient.request(port: port, "GET", "/whoami",
                                              headers: [("Authorization", "Bearer t0k")]).text == "t0k")
        }
    }

    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() throws {
        try withServer(Self.router()) { _, port in
            let missing = try RawHTTPClient.request(port: port, "GET", "/nope")
            #expect(missing.status == 404)
            #expect(try missing.json()["code"] as? String == "not_found")
            #expect(missing.headers["Content-Type"] == "application/problem+json")

            let wrong = try RawHTTPClient.request(port: port, "PUT", "/v1/devices/x", body: Array("{}".utf8))
            #expect(wrong.status == 405)
            #expect(wrong.headers["Allow"] == "GET, HEAD, DELETE")
            #expect(try wrong.json()["code"] as? String == "method_not_allowed")

            // Methods no route knows (TRACE, made-up tokens) are the client's error too: 405 with Allow, or 404.
            let trace = try RawHTTPClient.request(port: port, "TRACE", "/v1/devices/x")
            #expect(trace.status == 405)
            #expect(trace.headers["Allow"] == "GET, HEAD, DELETE")
            #expect(try RawHTTPClient.request(port: port, "BREW", "/nope").status == 404)
        }
    }

    @Test func malformedPercentEncodingIs400() throws {
        try withServer(Self.router()) { _, port in
            for target in ["/v1/devices/%zz", "/hello?x=%4", "/v1/devices/%FF"] {
                let response = try RawHTTPClient.request(port: port, "GET", target)
                #expect(response.status == 400, "\(target)")
                #expect(try response.json()["code"] as? String == "bad_request")
            }
        }
    }

    @Test func problemJSONShapeOverTheWire() throws {
        try withServer(Self.router()) { _, port in
            let response = try RawHTTPClient.request(port: port, "GET", "/teapot", headers: [("X-Request-Id", "abc-1")])
            #expect(response.status == 418)
            #expect(response.headers["X-Extra"] == "1")
            #expect(response.headers["Content-Type"] == "application/problem+json")
            let object = try response.json()
            #expect(Set(object.keys) == ["type", "title", "status", "detail", "code", "request_id"])
            #expect(object["type"] as? String == "https://fleetadapt.dev/problems/teapot")
            #expect(object["status"] as? Int == 418)
            #expect(object["detail"] as? String == "short and stout")
            #expect(object["request_id"] as? String == "abc-1")
        }
    }

    @Test func jsonDecodeErrorsAre400And422WithFieldNames() throws {
        try withServer(Self.router()) { _, port in
            let ok = try RawHTTPClient.request(port: port, "POST", "/echo", json: #"{"name":"a","count":2}"#)
            #expect(ok.status == 201)
            #expect(ok.text == #"{"count":2,"name":"a"}"#)

            let malformed = try RawHTTPClient.request(port: port, "POST", "/echo", json: #"{"name":"#)
            #expect(malformed.status == 400)
            #expect(try malformed.json()["code"] as? String == "invalid_json")

            let notObject = try RawHTTPClient.request(port: port, "POST", "/echo", json: "[1]")
            #expect(notObject.status == 400)

            let invalid = try RawHTTPClient.request(port: port, "POST", "/echo", json: #"{"name":"a","count":"x"}"#)
            #expect(invalid.status == 422)
            let object = try invalid.json()
            #expect(object["code"] as? String == "validation_failed")
            #expect(object["errors"] as? [[String: String]] == [["field": "count", "message": "must be an integer"]])

            let missing = try RawHTTPClient.request(port: port, "POST", "/echo", json: #"{"count":1}"#)
            #expect(try missing.json()["errors"] as? [[String: String]] == [["field": "name", "message": "is required"]])
        }
    }

    @Test func requestIDIsEchoedOrGenerated() throws {
        try withServer(Self.router()) { _, port in
            let echoed = try RawHTTPClient.request(port: port, "GET", "/hello", headers: [("X-Request-Id", "my.id_1-2")])
            #expect(echoed.headers["X-Request-Id"] == "my.id_1-2")

            let generated = try RawHTTPClient.request(port: port, "GET", "/hello")
            let id = try #require(generated.headers["X-Request-Id"])
            #expect(UUID(uuidString: id) != nil)

            let invalid = try RawHTTPClient.request(port: port, "GET", "/nope", headers: [("X-Request-Id", "bad id!")])
            let replaced = try #require(invalid.headers["X-Request-Id"])
            #expect(replaced != "bad id!" && UUID(uuidString: replaced) != nil)
            #expect(try invalid.json()["request_id"] as? String == replaced)
        }
    }

    @Test func contentLengthOverLimitIs413WithoutReadingTheBody() throws {
        try withServer(Self.router()) { _, port in
            // Declares 2 KiB but sends none: the answer must come from the header alone.
            let response = try RawHTTPClient.answerToHead(port: port, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n",
                                                          timeoutSeconds: 5)
            #expect(response.status == 413)
            #expect(try response.json()["code"] as? String == "payload_too_large")

            let fits = try RawHTTPClient.request(port: port, "POST", "/small", body: [UInt8](repeating: 1, count: 1024))
            #expect(fits.text == "got 1024")

            let unknown = try RawHTTPClient.request(port: port, "POST", "/nope",
                                                    body: [UInt8](repeating: 32, count: (1 << 20) + 1))
            #expect(unknown.status == 404, "routing errors take precedence over the size")

            let global = try RawHTTPClient.request(port: port, "POST", "/echo",
                                                   body: [UInt8](repeating: 32, count: (1 << 20) + 1))
            #expect(global.status == 413)
        }
    }

    @Test func chunkedBodyOverLimitIs413() throws {
        try withServer(Self.router()) { _, port in
            let fd = try RawHTTPClient.connect(port: port)
            defer { close(fd) }
            RawHTTPClient.send(fd, "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            let chunk = Array("100\r\n".utf8) + [UInt8](repeating: 65, count: 256) + Array("\r\n".utf8)
            for _ in 0..<64 { RawHTTPClient.send(fd, chunk) }  // 16 KiB against a 1 KiB limit
            RawHTTPClient.send(fd, "0\r\n\r\n")
            let response = try RawHTTPClient.parse(RawHTTPClient.readAll(fd))
            #expect(response.status == 413)
            #expect(try response.json()["code"] as? String == "payload_too_large")

            let small = try RawHTTPClient.exchange(port: port, raw: Array(
                "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8))
            #expect(small.text == "got 5")
        }
    }

    @Test func throwingHandlerGives500WithoutLeakingAndServerKeepsServing() throws {
        try withServer(Self.router()) { _, port in
            let boom = try RawHTTPClient.request(port: port, "GET", "/boom")
            #expect(boom.status == 500)
            #expect(!boom.text.contains("hunter2"))
            #expect(!boom.text.contains("Secret"))
            let object = try boom.json()
            #expect(object["code"] as? String == "internal_error")
            #expect(object["request_id"] as? String == boom.headers["X-Request-Id"])
            #expect(try RawHTTPClient.request(port: port, "GET", "/hello").text == "hello")

            let unencodable = try RawHTTPClient.request(port: port, "GET", "/nan", headers: [("X-Request-Id", "nan-1")])
            #expect(unencodable.status == 500)
            #expect(try unencodable.json()["request_id"] as? String == "nan-1")
        }
    }

    @Test func headIsServedByGetWithoutBody() throws {
        try withServer(Self.router()) { _, port in
            let head = try RawHTTPClient.request(port: port, "HEAD", "/hello")
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.headers["Content-Length"] == "5")
            #expect(head.headers["X-Request-Id"] != nil)
        }
    }

    @Test func accessLogHasOneLinePerRequest() throws {
        let lines = Mutex<[String]>([])
        try withServer(Self.router(), configure: { configuration in
            configuration.accessLog = { line in lines.withLock { $0.append(line) } }
        }) { _, port in
            _ = try RawHTTPClient.request(port: port, "GET", "/hello", headers: [("X-Request-Id", "log-1")])
            _ = try RawHTTPClient.request(port: port, "GET", "/nope", headers: [("X-Request-Id", "log-2")])
            // The completion callback may run just after the client saw the response.
            for _ in 0..<200 where lines.withLock({ $0.count }) < 2 { usleep(5_000) }
        }
        let logged = lines.withLock { $0 }
        #expect(logged.count == 2)
        #expect(logged.first { $0.hasPrefix("GET /hello 200 5B ") && $0.hasSuffix("ms log-1") } != nil)
        #expect(logged.first { $0.hasPrefix("GET /nope 404 ") && $0.hasSuffix("log-2") } != nil)
    }

    @Test func connectionKeepAliveServesSeveralRequests() throws {
        try withServer(Self.router()) { _, port in
            let fd = try RawHTTPClient.connect(port: port)
            defer { close(fd) }
            RawHTTPClient.send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/devices/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let text = String(decoding: RawHTTPClient.readAll(fd), as: UTF8.self)
            #expect(text.components(separatedBy: "HTTP/1.1 200").count == 3)
            #expect(text.hasSuffix("me"))
        }
    }
}
