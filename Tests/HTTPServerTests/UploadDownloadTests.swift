import Foundation
import Synchronization
import Testing
import TestSupport
@testable import HTTPServer

@Suite(.serialized) struct UploadDownloadTests {
    static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    static func payload(_ count: Int) -> [UInt8] {
        var state: UInt32 = 12345
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: state >> 24)
        }
    }

    @Test func spooledUploadOf5MiBArrivesByteExactAndIsDeleted() throws {
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let seenPath = Mutex<String?>(nil)
        let router = Router()
        router.add(.PUT, "/artifacts/{id}", options: RouteOptions(bodyLimit: 8 << 20, spoolToDisk: true)) { request in
            let path = try #require(request.bodyFile)
            seenPath.withLock { $0 = path }
            let data = try #require(FileManager.default.contents(atPath: path))
            return .json(["size": String(data.count), "hash": String(Self.fnv1a(data)),
                          "inMemory": String(request.body.count)])
        }
        try withServer(router, configure: { $0.spoolDirectory = spool }) { _, port in
            let body = Self.payload(5 << 20)
            let response = try RawHTTPClient.request(port: port, "PUT", "/artifacts/x", body: body)
            #expect(response.status == 200)
            let object = try #require(try response.json() as? [String: String])
            #expect(object["size"] == String(body.count))
            #expect(object["hash"] == String(Self.fnv1a(body)))
            #expect(object["inMemory"] == "0")
            let path = try #require(seenPath.withLock { $0 })
            #expect(path.hasPrefix(spool))
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)

            // The same through a chunked stream with uneven chunk sizes.
            let chunked = Self.payload(300_000)
            var raw = Array("PUT /artifacts/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)
            var offset = 0
            var size = 1
            while offset < chunked.count {
                let n = min(size, chunked.count - offset)
                raw += Array("\(String(n, radix: 16))\r\n".utf8) + chunked[offset..<(offset + n)] + [13, 10]
                offset += n
                size = size * 3 + 7
            }
            raw += Array("0\r\n\r\n".utf8)
            let streamed = try #require(try RawHTTPClient.exchange(port: port, raw: raw).json() as? [String: String])
            #expect(streamed["size"] == String(chunked.count))
            #expect(streamed["hash"] == String(Self.fnv1a(chunked)))

            let tooBig = try RawHTTPClient.request(port: port, "PUT", "/artifacts/y",
                                                   body: [UInt8](repeating: 0, count: (8 << 20) + 1))
            #expect(tooBig.status == 413)
            #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)
        }
    }

    @Test func fileResponsesStreamFromDisk() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dl-\(UUID().uuidString)").path
        let content = Self.payload(3 << 20)
        try Data(content).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let router = Router()
        router.add(.GET, "/download") { _ in
            .file(path: path, contentType: "application/octet-stream", headers: ["ETag": "\"v1\""])
        }
        router.add(.GET, "/missing") { _ in .file(path: path + ".nope", contentType: "text/plain") }
        try withServer(router) { _, port in
            let response = try RawHTTPClient.request(port: port, "GET", "/download")
            #expect(response.status == 200)
            #expect(response.headers["Content-Type"] == "application/octet-stream")
            #expect(response.headers["ETag"] == "\"v1\"")
            #expect(response.body.count == content.count)
            #expect(response.body == content)
            #expect(try RawHTTPClient.request(port: port, "GET", "/missing").status == 404)
        }
    }
}
