import Foundation
import Testing
@testable import HTTPServer

@Suite struct HTTPHeadersTests {
    @Test func lookupIsCaseInsensitiveAndKeepsOrder() {
        var headers = HTTPHeaders()
        headers.add("Set-Cookie", "a=1")
        headers.add("content-type", "text/plain")
        headers.add("SET-COOKIE", "b=2")
        #expect(headers["Content-Type"] == "text/plain")
        #expect(headers["set-cookie"] == "a=1")
        #expect(headers.values("Set-Cookie") == ["a=1", "b=2"])
        #expect(headers["Content-Typf"] == nil)
        #expect(headers["x-"] == nil)
        headers.set("set-cookie", "c=3")
        #expect(headers.map(\.name) == ["content-type", "set-cookie"])
        #expect(headers.values("Set-Cookie") == ["c=3"])
    }

    @Test func nonLettersAreNotFolded() {
        // '@' (0x40) and '`' (0x60) differ only in bit 0x20 but are not letters.
        #expect(!HTTPHeaders.namesEqual("a@", "a`"))
        #expect(HTTPHeaders.namesEqual("X-Request-Id", "x-request-id"))
    }

    @Test func bearerTokenParsing() {
        func token(_ value: String?) -> String? {
            var request = HTTPRequest(method: .GET, path: "/")
            if let value { request.headers.add("Authorization", value) }
            return request.bearerToken
        }
        #expect(token("Bearer abc.def") == "abc.def")
        #expect(token("bearer  xyz ") == "xyz")
        #expect(token("Basic Zm9vOmJhcg==") == nil)
        #expect(token("Bearer ") == nil)
        #expect(token(nil) == nil)
    }

    @Test func requestIDValidation() {
        #expect(RequestID.isValid("abc-123_X.y"))
        #expect(RequestID.isValid(String(repeating: "a", count: 128)))
        #expect(!RequestID.isValid(String(repeating: "a", count: 129)))
        #expect(!RequestID.isValid(""))
        #expect(!RequestID.isValid("a b"))
        #expect(!RequestID.isValid("a\nb"))
        #expect(RequestID.isValid(RequestID.generate()))
        #expect(RequestID.generate() != RequestID.generate())
    }

    @Test func generatedIDsAreUniqueVersion4UUIDs() throws {
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let id = RequestID.generate()
            let uuid = try #require(UUID(uuidString: id), "\(id)")
            #expect(uuid.uuidString.lowercased() == id)
            #expect(Array(id.utf8)[14] == UInt8(ascii: "4"))
            #expect("89ab".utf8.contains(Array(id.utf8)[19]))
            seen.insert(id)
        }
        #expect(seen.count == 20_000)
    }
}
