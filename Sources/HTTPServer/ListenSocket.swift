import Foundation

/// Errors from starting the server.
public enum HTTPServerStartError: Error, CustomStringConvertible, Sendable {
    case invalidHost(String)
    case socket(operation: String, errno: Int32)
    case daemonStartFailed
    case alreadyStarted
    case invalidSocketPath(String, String)

    public var description: String {
        switch self {
        case .invalidHost(let host): "not a numeric IPv4/IPv6 address: \(host)"
        case .socket(let operation, let code): "\(operation) failed: \(String(cString: strerror(code)))"
        case .daemonStartFailed: "MHD_start_daemon failed (see the MHD error log above)"
        case .alreadyStarted: "the server is already running"
        case .invalidSocketPath(let path, let why): "unix socket \(path): \(why)"
        }
    }
}

/// We open the listening socket ourselves and hand it to MHD (`MHD_OPTION.LISTEN_SOCKET`): that binds any numeric
/// host, v4 or v6, and gives the real port through getsockname without `MHD_get_daemon_info`, which is variadic
/// and therefore not callable from Swift.
enum ListenSocket {
    static func open(host: String, port: Int, backlog: Int32 = 1024) throws -> (fd: Int32, port: Int) {
        let address = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: Int32
        if inet_pton(AF_INET, address, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        } else if inet_pton(AF_INET6, address, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        } else {
            throw HTTPServerStartError.invalidHost(host)
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPServerStartError.socket(operation: "socket", errno: errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound: Int32 = family == AF_INET
            ? withUnsafePointer(to: &v4) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            : withUnsafePointer(to: &v6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw HTTPServerStartError.socket(operation: "bind \(host):\(port)", errno: code)
        }
        guard listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw HTTPServerStartError.socket(operation: "listen", errno: code)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            let code = errno
            close(fd)
            throw HTTPServerStartError.socket(operation: "getsockname", errno: code)
        }
        let networkPort: UInt16 = withUnsafePointer(to: &storage) { p in
            family == AF_INET
                ? p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }
                : p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }
        }
        return (fd, Int(UInt16(bigEndian: networkPort)))
    }
}

/// A Unix-domain listening socket at a path, for local clients only (a device's applications talking to its
/// agent): no port to collide with, and access is the file's permission (mode `mode`, default 0660: owner and
/// group). A socket file left by a process that is gone is replaced; a socket someone still listens on, or any
/// file that is not a socket, is refused rather than clobbered.
enum UnixListenSocket {
    static func open(path: String, mode: mode_t = 0o660, backlog: Int32 = 1024) throws -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < capacity else { throw HTTPServerStartError.invalidSocketPath(path, "must be 1–\(capacity - 1) bytes") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else {
                throw HTTPServerStartError.invalidSocketPath(path, "exists and is not a socket; not replaced")
            }
            if isListening(&address) { throw HTTPServerStartError.invalidSocketPath(path, "another process listens on it") }
            guard unlink(path) == 0 else { throw HTTPServerStartError.socket(operation: "unlink stale socket \(path)", errno: errno) }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPServerStartError.socket(operation: "socket", errno: errno) }
        // The file is created by bind with the umask's mode; a restrictive umask while binding, then the mode.
        let previous = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindErrno = errno
        umask(previous)
        guard bound == 0 else {
            close(fd)
            throw HTTPServerStartError.socket(operation: "bind \(path)", errno: bindErrno)
        }
        guard chmod(path, mode) == 0, listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            unlink(path)
            throw HTTPServerStartError.socket(operation: "listen on \(path)", errno: code)
        }
        return fd
    }

    /// Whether a process accepts connections on the socket at `address`.
    private static func isListening(_ address: inout sockaddr_un) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }
}
