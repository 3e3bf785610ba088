import Foundation
import Synchronization

/// Every open connection, from MHD's connection-started to its connection-closed notification: its socket, the
/// client's address and the absolute deadline of the phase it is in. MHD's own timeout is an idle timeout, reset
/// by every byte, so a client trickling one byte at a time would hold its slot forever; the sweep shuts down the
/// socket of any connection past its deadline, and MHD then closes it as if the client had hung up.
///
/// The socket is touched only under the lock and only between the two notifications; MHD calls the closed
/// notification before it closes the descriptor, so a descriptor number reused by a later connection is never
/// shut down by mistake.
final class ConnectionTracker: Sendable {
    struct Entry: Sendable {
        var fd: Int32
        var address: String
        var deadline: ContinuousClock.Instant?
    }

    private let entries = Mutex<[UInt: Entry]>([:])

    func started(_ key: UInt, fd: Int32, address: String, deadline: ContinuousClock.Instant) {
        entries.withLock { $0[key] = Entry(fd: fd, address: address, deadline: deadline) }
    }

    func closed(_ key: UInt) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    /// nil lifts the deadline (a response is being sent, or a long-poll is parked with its own timeout).
    func setDeadline(_ key: UInt, _ deadline: ContinuousClock.Instant?) {
        entries.withLock { $0[key]?.deadline = deadline }
    }

    func address(_ key: UInt) -> String? { entries.withLock { $0[key]?.address } }

    /// A duplicate of the connection's socket (the caller closes it), so it outlives MHD's close.
    func duplicateSocket(_ key: UInt) -> Int32? {
        entries.withLock { table in
            guard let fd = table[key]?.fd, fd >= 0 else { return nil }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
            return copy >= 0 ? copy : nil
        }
    }

    var count: Int { entries.withLock { $0.count } }

    /// Shuts down every connection past its deadline; returns how many.
    @discardableResult
    func sweep(now: ContinuousClock.Instant) -> Int {
        entries.withLock { table in
            var expired = 0
            for (key, entry) in table {
                guard let deadline = entry.deadline, deadline <= now else { continue }
                table[key]?.deadline = nil
                if entry.fd >= 0 { _ = shutdown(entry.fd, Int32(SHUT_RDWR)) }
                expired += 1
            }
            return expired
        }
    }

    /// "203.0.113.7" or "2001:db8::1"; "" for a family other than IPv4/IPv6.
    static func format(_ address: UnsafePointer<sockaddr>?) -> String {
        guard let address else { return "" }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        func text() -> String {
            String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var addr = v4.pointee.sin_addr
                return inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count)) != nil ? text() : ""
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var addr = v6.pointee.sin6_addr
                return inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count)) != nil ? text() : ""
            }
        default:
            return ""
        }
    }
}

/// Lingering close: after an early answer to a request whose body was never read, closing at once would make the
/// kernel reset the connection while the client is still sending, and a client that writes the whole body before
/// reading (Python's urllib and requests do) would see a broken pipe instead of the answer. So the socket (a
/// duplicate, MHD closes its own) is shut for writing, then read and dropped until the client is done, a byte
/// bound or a deadline; one thread serves every lingering socket with `poll(2)`.
final class Lingerer: Sendable {
    private struct Socket: Sendable {
        var fd: Int32
        var deadline: ContinuousClock.Instant
        var remaining: Int
    }

    private let sockets = Mutex<(list: [Socket], running: Bool)>(([], false))
    private let limits: HTTPServerConfiguration.Limits

    init(limits: HTTPServerConfiguration.Limits) {
        self.limits = limits
    }

    var count: Int { sockets.withLock { $0.list.count } }

    /// Takes ownership of `fd`.
    func linger(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_WR))
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        let socket = Socket(fd: fd, deadline: .now + .seconds(limits.lingerSeconds), remaining: limits.lingerBytes)
        // nil: over `maxLingering`, close at once; true: no thread is serving the list, start one.
        let startThread: Bool? = sockets.withLock { state in
            guard state.list.count < limits.maxLingering else { return nil }
            state.list.append(socket)
            if state.running { return false }
            state.running = true
            return true
        }
        guard let startThread else {
            close(fd)
            return
        }
        if startThread {
            let thread = Thread { [self] in run() }
            thread.name = "HTTPServer.linger"
            thread.start()
        }
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let snapshot: [Socket] = sockets.withLock { state in
                if state.list.isEmpty { state.running = false }
                return state.list
            }
            if snapshot.isEmpty { return }
            var fds = snapshot.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), 100)
            var finished: [Int32: Int] = [:]  // fd -> bytes read this round, or -1 when done
            let now = ContinuousClock.now
            for (index, entry) in fds.enumerated() {
                var done = snapshot[index].deadline <= now
                var read = 0
                if !done, entry.revents != 0 {
                    while read < snapshot[index].remaining {
                        let n = buffer.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, 0) }
                        if n > 0 { read += n; continue }
                        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { break }
                        done = true  // end of stream or error
                        break
                    }
                    if read >= snapshot[index].remaining { done = true }
                }
                if done || read > 0 { finished[entry.fd] = done ? -1 : read }
            }
            guard !finished.isEmpty else { continue }
            let closing: [Int32] = sockets.withLock { state in
                var closing: [Int32] = []
                state.list.removeAll { socket in
                    guard let outcome = finished[socket.fd] else { return false }
                    if outcome < 0 { closing.append(socket.fd); return true }
                    return false
                }
                for i in state.list.indices { if let n = finished[state.list[i].fd], n > 0 { state.list[i].remaining -= n } }
                return closing
            }
            for fd in closing { close(fd) }
        }
    }
}
