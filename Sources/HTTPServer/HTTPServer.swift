internal import CMicroHTTPD
import Dispatch
import Foundation
import Synchronization

/// The libmicrohttpd daemon behind a router. Handlers run synchronously on MHD's worker threads
/// (`threadPoolSize` of them) and may block.
public final class HTTPServer: Sendable {
    /// Owns the `MHD_Daemon *` and the core its callbacks use. `@unchecked Sendable`: the pointer is only used by
    /// `quiesce` and `deinit`, and `HTTPServer` reaches the instance only through its `Mutex`.
    final class Daemon: @unchecked Sendable {
        let handle: OpaquePointer
        let core: ServerCore

        init(handle: OpaquePointer, core: ServerCore) {
            self.handle = handle
            self.core = core
        }

        /// Stops accepting; returns the listening socket, which is now ours to close.
        func quiesce() -> Int32 { MHD_quiesce_daemon(handle) }

        deinit {
            // Stops and joins every worker thread before `core` (the callbacks' context) is released.
            MHD_stop_daemon(handle)
        }
    }

    public let configuration: HTTPServerConfiguration
    private let router: Router
    private let daemon = Mutex<Daemon?>(nil)
    private let port = Atomic<Int>(0)

    public init(configuration: HTTPServerConfiguration, router: Router) {
        self.configuration = configuration
        self.router = router
    }

    /// Binds and starts serving the routes registered so far.
    public func start() throws {
        try daemon.withLock { running in
            guard running == nil else { throw HTTPServerStartError.alreadyStarted }
            let core = ServerCore(configuration: configuration, routes: router.snapshot())
            let (fd, boundPort) = try ListenSocket.open(host: configuration.host, port: configuration.port)
            guard let handle = Self.startDaemon(listenFD: fd, core: core) else {
                close(fd)
                throw HTTPServerStartError.daemonStartFailed
            }
            running = Daemon(handle: handle, core: core)
            core.scheduleSweep()
            port.store(boundPort, ordering: .sequentiallyConsistent)
        }
    }

    private static func startDaemon(listenFD: Int32, core: ServerCore) -> OpaquePointer? {
        let configuration = core.configuration
        var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue
            | MHD_USE_ERROR_LOG.rawValue
        flags |= MHD_is_feature_supported(.FEATURE_EPOLL) == .YES ? MHD_USE_EPOLL.rawValue : MHD_USE_POLL.rawValue
        let context = Unmanaged.passUnretained(core).toOpaque()
        let completedFn: MHD_RequestCompletedCallback = requestCompleted
        let uriLogFn: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?)
            -> UnsafeMutableRawPointer? = uriLogged
        let unescapeFn: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutablePointer<CChar>?)
            -> Int = keepEscaped
        let notifyFn: MHD_NotifyConnectionCallback = connectionNotified
        let limits = configuration.limits
        var options: [MHD_OptionItem] = [
            MHD_OptionItem(option: .LISTEN_SOCKET, value: Int(listenFD), ptr_value: nil),
            MHD_OptionItem(option: .THREAD_POOL_SIZE, value: max(1, configuration.threadPoolSize),
                           ptr_value: nil),
            MHD_OptionItem(option: .CONNECTION_TIMEOUT, value: max(0, configuration.connectionTimeoutSeconds),
                           ptr_value: nil),
            MHD_OptionItem(option: .NOTIFY_COMPLETED, value: unsafeBitCast(completedFn, to: Int.self),
                           ptr_value: context),
            MHD_OptionItem(option: .URI_LOG_CALLBACK, value: unsafeBitCast(uriLogFn, to: Int.self),
                           ptr_value: context),
            MHD_OptionItem(option: .UNESCAPE_CALLBACK, value: unsafeBitCast(unescapeFn, to: Int.self),
                           ptr_value: nil),
            MHD_OptionItem(option: .NOTIFY_CONNECTION, value: unsafeBitCast(notifyFn, to: Int.self),
                           ptr_value: context),
            MHD_OptionItem(option: .CONNECTION_LIMIT, value: max(1, limits.maxConnections), ptr_value: nil),
            MHD_OptionItem(option: .PER_IP_CONNECTION_LIMIT, value: max(0, limits.maxConnectionsPerAddress),
                           ptr_value: nil),
            MHD_OptionItem(option: .END, value: 0, ptr_value: nil),
        ]
        // MHD_start_daemon is variadic; its va_list twin takes the options as one MHD_OPTION.ARRAY.
        return options.withUnsafeMutableBufferPointer { items in
            withVaList([Int32(bitPattern: MHD_OPTION.ARRAY.rawValue), items.baseAddress!,
                        Int32(bitPattern: MHD_OPTION.END.rawValue)]) { arguments in
                MHD_start_daemon_va(flags, 0, nil, nil, accessHandler, context, arguments)
            }
        }
    }

    /// Requests MHD has begun and not yet reported complete (parked long-polls included); for tests and metrics.
    public var inFlightRequests: Int {
        daemon.withLock { $0?.core.inFlight.load(ordering: .sequentiallyConsistent) ?? 0 }
    }

    /// The port actually bound (useful with `port: 0`); 0 before `start()`.
    public var boundPort: Int { port.load(ordering: .sequentiallyConsistent) }

    /// Stops accepting, answers parked long-polls with their timeout responses, lets in-flight requests finish
    /// for up to `gracePeriod`, then stops the daemon (which aborts whatever is left).
    public func shutdown(gracePeriod: Duration = .seconds(10)) {
        guard let running = daemon.withLock({ $0 }) else { return }
        let core = running.core
        guard !core.shuttingDown.exchange(true, ordering: .sequentiallyConsistent) else { return }
        let listenFD = running.quiesce()
        if listenFD >= 0 { close(listenFD) }
        core.expireAllParked()
        let deadline = ContinuousClock.now + gracePeriod
        while core.inFlight.load(ordering: .sequentiallyConsistent) > 0 && ContinuousClock.now < deadline {
            usleep(2_000)
        }
        // Anything still parked (a handler that parked after the sweep) is answered before MHD frees it.
        core.expireAllParked()
        daemon.withLock { $0 = nil }
    }

    /// Blocks the calling thread until SIGTERM or SIGINT arrives.
    public static func waitForTermination() {
        let received = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "HTTPServer.signals")
        let sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)  // let the dispatch source, not the default action, see it
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { received.signal() }
            source.resume()
            return source
        }
        received.wait()
        for source in sources { source.cancel() }
    }
}
