import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TCP ports on loopback for a child process to listen on (the demo's and benches' agents, tests that start them).
/// Each answer is only true now: another process may take a port before the child does, so callers that start many
/// children pick each one just before starting it, or a block outside the kernel's ephemeral range.
public enum LoopbackPort {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// A port the kernel hands out for port 0: bound, read back, closed.
    public static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Unavailable(description: "no free loopback port: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard let port = bind(fd, port: 0) else { throw Unavailable(description: "no free loopback port: \(String(cString: strerror(errno)))") }
        return port
    }

    /// Whether 127.0.0.1:`port` can be listened on now.
    public static func isFree(_ port: Int) -> Bool {
        guard (1...65535).contains(port) else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bind(fd, port: port) == port
    }

    /// The first of `count` consecutive free ports (for a command that listens on `base`, `base + 1`, …: the demo's
    /// edge server and agents). Drawn from 20000–32767, below Linux's default ephemeral range (32768–60999), so that
    /// no socket bound to port 0 meanwhile — another test's server, an outgoing connection — lands in the block.
    public static func freeBlock(count: Int) throws -> Int {
        precondition(count > 0 && count < 1000)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let base = Int.random(in: 20000...(32767 - count), using: &generator)
            if (base..<(base + count)).allSatisfy(isFree) { return base }
        }
        throw Unavailable(description: "no \(count) consecutive free loopback ports in 20000–32767")
    }

    /// Binds `fd` to 127.0.0.1:`port` (0: any) and answers the bound port, or nil.
    private static func bind(_ fd: Int32, port: Int) -> Int? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        return ok ? Int(UInt16(bigEndian: address.sin_port)) : nil
    }
}
