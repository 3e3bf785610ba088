import Foundation
import HTTPServer

/// A tiny blocking HTTP/1.1 client over raw sockets: it can send what URLSession refuses to (bad escapes,
/// lying Content-Length, oversized chunked streams) and keeps many connections open at once.
public struct RawResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }

    public init(status: Int, headers: HTTPHeaders, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body as a JSON object; anything else throws, naming what came.
    public func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw RawClientError(description: "the body is not a JSON object: \(text.prefix(200))")
        }
        return object
    }
}

public struct RawClientError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) { self.description = description }
}

public enum RawHTTPClient {
    /// `source`: a loopback address to connect from (127.0.0.2, ...), so tests can act as another client.
    public static func connect(port: Int, timeoutSeconds: Int = 15, source: String? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RawClientError(description: "socket: \(errno)") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else {
                let code = errno
                close(fd)
                throw RawClientError(description: "bind \(source): \(code)")
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let code = errno
            close(fd)
            throw RawClientError(description: "connect: \(code)")
        }
        return fd
    }

    /// Sends everything it can; a server that hung up early (413) is not an error here.
    @discardableResult
    public static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress! + offset, bytes.count - offset,
                                                            Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    public static func send(_ fd: Int32, _ text: String) { send(fd, Array(text.utf8)) }

    /// Reads until the peer closes (requests are sent with `Connection: close`).
    public static func readAll(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return result
    }

    /// Reads one answer with a `Content-Length` body from a connection that stays open (a keep-alive request), so a
    /// test knows the server has accepted and served that connection before it goes on.
    public static func readOneResponse(_ fd: Int32) throws -> RawResponse {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator: [UInt8] = [13, 10, 13, 10]
        while true {
            if let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) {
                let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased()
                let length = head.components(separatedBy: "\r\n")
                    .first(where: { $0.hasPrefix("content-length:") })
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if bytes.count >= end + 4 + length { return try parse(Array(bytes[..<(end + 4 + length)])) }
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { throw RawClientError(description: "connection closed after \(bytes.count) bytes") }
            bytes.append(contentsOf: buffer[0..<n])
        }
    }

    public static func parse(_ bytes: [UInt8]) throws -> RawResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else {
            throw RawClientError(description: "no complete response head in \(bytes.count) bytes")
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw RawClientError(description: "bad status line in \(head)")
        }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(bytes[(end + 4)...])
        if headers["Transfer-Encoding"]?.lowercased() == "chunked" { body = try dechunk(body) }
        return RawResponse(status: status, headers: headers, body: body)
    }

    public static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let lineEnd = (i..<bytes.count - 1).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
                  let size = Int(String(decoding: bytes[i..<lineEnd], as: UTF8.self)
                      .split(separator: ";")[0], radix: 16) else {
                throw RawClientError(description: "bad chunk")
            }
            if size == 0 { break }
            out.append(contentsOf: bytes[(lineEnd + 2)..<(lineEnd + 2 + size)])
            i = lineEnd + 2 + size + 2
        }
        return out
    }

    /// Sends only a request head (whose body never follows) on a fresh connection and parses what the server answers
    /// from the head alone before it closes or `timeoutSeconds` pass: early refusals (413, 501) must not wait for a body.
    public static func answerToHead(port: Int, _ head: String, timeoutSeconds: Int) throws -> RawResponse {
        let fd = try connect(port: port, timeoutSeconds: timeoutSeconds)
        defer { close(fd) }
        send(fd, head)
        return try parse(readAll(fd))
    }

    /// Sends raw bytes on a fresh connection and parses the answer.
    public static func exchange(port: Int, raw: [UInt8]) throws -> RawResponse {
        let fd = try connect(port: port)
        defer { close(fd) }
        send(fd, raw)
        return try parse(readAll(fd))
    }

    public static func requestBytes(_ method: String, _ target: String, headers: [(String, String)] = [],
                             body: [UInt8] = []) -> [UInt8] {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    public static func request(port: Int, _ method: String, _ target: String, headers: [(String, String)] = [],
                        body: [UInt8] = []) throws -> RawResponse {
        try exchange(port: port, raw: requestBytes(method, target, headers: headers, body: body))
    }

    public static func request(port: Int, _ method: String, _ target: String, headers: [(String, String)] = [],
                        json: String) throws -> RawResponse {
        try request(port: port, method, target, headers: headers + [("Content-Type", "application/json")],
                    body: Array(json.utf8))
    }
}
