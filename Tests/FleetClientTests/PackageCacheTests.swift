import FleetClient
import Foundation
import HTTPServer
import Testing

/// The cache downloads a package once, revalidates it with If-None-Match, and refuses a body whose SHA-256 is not
/// the ETag.
@Suite(.serialized) struct PackageCacheTests {
    @Test func downloadsOnceRevalidatesAndRefusesACorruptBody() throws {
        let good = UUID(), corrupt = UUID()
        let package = Data("a package".utf8)
        let digest = CoordinatorClient.sha256Hex(package)
        let server = try CannedServer { router, recorder in
            router.add(.GET, "/v1/models/{id}/package") { request in
                recorder.record(request)
                var headers = HTTPHeaders()
                if request.pathParameters["id"] == corrupt.uuidString.lowercased() {
                    headers.set("ETag", "\"\(String(repeating: "0", count: 64))\"")
                    return HTTPResponse(status: 200, headers: headers, body: Array(package))
                }
                headers.set("ETag", "\"\(digest)\"")
                if request.headers["If-None-Match"] == "\"\(digest)\"" { return HTTPResponse(status: 304, headers: headers) }
                return HTTPResponse(status: 200, headers: headers, body: Array(package))
            }
        }
        defer { server.shutdown() }
        let directory = NSTemporaryDirectory() + "fleetclient-cache-\(UUID().uuidString.lowercased())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = PackageCache(directory: directory, client: CoordinatorClient(baseURL: server.baseURL, token: "t"))

        let first = try cache.file(for: good)
        #expect(first == directory + "/\(digest).fap")
        #expect(FileManager.default.contents(atPath: first) == package)
        #expect(try cache.file(for: good) == first)
        let asked = server.seen
        #expect(asked.count == 2)
        #expect(asked[0].headers["if-none-match"] == nil)
        #expect(asked[1].headers["if-none-match"] == "\"\(digest)\"")

        #expect(throws: CoordinatorClient.Failure.self) { _ = try cache.file(for: corrupt) }
        #expect(!FileManager.default.fileExists(atPath: directory + "/\(corrupt.uuidString.lowercased()).sha256"))
    }
}
