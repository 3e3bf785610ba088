internal import CMicroHTTPD
import Foundation
import Synchronization

/// The libmicrohttpd daemon: turns its callbacks into `HTTPRequest` values for the router and queues the answers.
/// `@unchecked Sendable` because it wraps the MHD_Daemon handle; the handle is written once in `start`
/// (before any request can arrive) and read again only by `shutdown`, under `lifecycle`.
public final class HTTPServer: @unchecked Sendable {
    public let configuration: HTTPServerConfiguration
    let router: Router
    private var daemon: OpaquePointer?
    private var listenFD: Int32 = -1
    private let lifecycle = Mutex<Bool>(false)
    let inFlight = Atomic<Int>(0)
    let polls = PollRegistry()
    private let timerStop = StopSignal()
    private var port = 0

    public init(configuration: HTTPServerConfiguration, router: Router) {
        self.configuration = configuration
        self.router = router
    }

    deinit {
        if daemon != nil { shutdown(gracePeriod: .seconds(1)) }
    }

    public var boundPort: Int { port }

    /// Binds the listen socket (so port 0 resolves here) and starts MHD's worker threads.
    public func start() throws {
        signal(SIGPIPE, SIG_IGN)
        let fd = try Self.listenSocket(host: configuration.host, port: configuration.port)
        listenFD = fd
        port = try Self.localPort(fd)
        let flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue
            | MHD_USE_ERROR_LOG.rawValue | (configuration.host.contains(":") ? MHD_USE_IPv6.rawValue : 0)
        // The daemon holds `self` unretained as its callback context; `self` outlives it because
        // `shutdown` (also run by deinit) stops the daemon before `self` can go away.
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard let d = fleetadapt_mhd_start(UInt32(flags), fd, UInt32(max(1, configuration.threadPoolSize)),
                                           UInt32(configuration.connectionTimeoutSeconds),
                                           accessHandler, context, requestCompleted, context) else {
            close(fd)
            throw HTTPServerError(message: "libmicrohttpd could not start on \(configuration.host):\(port)")
        }
        daemon = d
        lifecycle.withLock { $0 = true }
        startTimer()
    }

    /// Stops accepting, answers every waiting long-poll with its timeout response, lets in-flight
    /// requests finish (up to `gracePeriod`), then stops the daemon.
    public func shutdown(gracePeriod: Duration = .seconds(10)) {
        let running = lifecycle.withLock { r -> Bool in
            defer { r = false }
            return r
        }
        guard running, let daemon else { return }
        let quiescedFD = MHD_quiesce_daemon(daemon)
        if quiescedFD >= 0 { close(quiescedFD) }
        for poll in polls.all() { poll.expireNow() }
        let deadline = ContinuousClock.now + gracePeriod
        while inFlight.load(ordering: .acquiring) > 0 && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        timerStop.stop()
        MHD_stop_daemon(daemon)
        self.daemon = nil
    }

    /// Blocks until SIGTERM or SIGINT.
    public static func waitForTermination() {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let done = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "fleetadapt.signals")
        let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler { done.signal() }
            s.resume()
            return s
        }
        done.wait()
        sources.forEach { $0.cancel() }
    }

    // MARK: - Long-poll deadlines

    /// One thread checks every waiting poll's deadline every 20 ms.
    private func startTimer() {
        let polls = self.polls
        let stop = timerStop
        let thread = Thread {
            while !stop.isStopped {
                let now = ContinuousClock.now
                for poll in polls.all() {
                    _ = poll.expireIfDue(now)
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            stop.finished()
        }
        thread.name = "fleetadapt.longpoll-timer"
        thread.start()
    }

    // MARK: - Sockets

    static func listenSocket(host: String, port: Int) throws -> Int32 {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPServerError(message: "socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var ok = false
        if v6 {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &addr.sin6_addr) == 1 else {
                close(fd)
                throw HTTPServerError(message: "'\(host)' is not an IP address")
            }
            ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 } }
        } else {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
                close(fd)
                throw HTTPServerError(message: "'\(host)' is not an IP address")
            }
            ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
        }
        guard ok else {
            let e = errno
            close(fd)
            throw HTTPServerError(message: "cannot bind \(host):\(port): \(String(cString: strerror(e)))")
        }
        guard listen(fd, 1024) == 0 else {
            close(fd)
            throw HTTPServerError(message: "listen() failed: errno \(errno)")
        }
        return fd
    }

    static func localPort(_ fd: Int32) throws -> Int {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard rc == 0 else { throw HTTPServerError(message: "getsockname() failed: errno \(errno)") }
        if Int32(storage.ss_family) == AF_INET6 {
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        }
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
    }
}

public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Stops a background loop and waits for it to notice.
final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    var isStopped: Bool { flag.load(ordering: .acquiring) }
    func stop() {
        if !flag.exchange(true, ordering: .acquiringAndReleasing) { done.wait() }
    }
    func finished() { done.signal() }
}

/// Long-polls whose connection is suspended, for the deadline timer and for shutdown.
final class PollRegistry: Sendable {
    private let polls = Mutex<[ObjectIdentifier: LongPoll]>([:])
    func add(_ poll: LongPoll) { polls.withLock { $0[ObjectIdentifier(poll)] = poll } }
    func remove(_ poll: LongPoll) { _ = polls.withLock { $0.removeValue(forKey: ObjectIdentifier(poll)) } }
    func all() -> [LongPoll] { polls.withLock { Array($0.values) } }
}
