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
        /// What MHD was given for HTTPS; it must outlive the daemon.
        let credentials: TLSCredentials?

        init(handle: OpaquePointer, core: ServerCore, credentials: TLSCredentials?) {
            self.handle = handle
            self.core = core
            self.credentials = credentials
        }

        /// Stops accepting; returns the listening socket, which is now ours to close.
        func quiesce() -> Int32 { MHD_quiesce_daemon(handle) }

        /// Connections the daemon still holds.
        var connections: Int { Int(fleetadapt_mhd_daemon_connections(handle)) }

        deinit {
            // Stops and joins every worker thread before `core` (the callbacks' context) is released.
            MHD_stop_daemon(handle)
        }
    }

    public let configuration: HTTPServerConfiguration
    private let router: Router
    private let daemon = Mutex<Daemon?>(nil)
    /// Daemons replaced by `reloadTLS()` that still serve their open connections.
    private let retired = Mutex<[Daemon]>([])
    private let port = Atomic<Int>(0)

    public init(configuration: HTTPServerConfiguration, router: Router) {
        self.configuration = configuration
        self.router = router
    }

    /// Binds and starts serving the routes registered so far.
    public func start() throws {
        try daemon.withLock { running in
            guard running == nil else { throw HTTPServerStartError.alreadyStarted }
            let credentials = try configuration.tls.map { tls in
                guard MHD_is_feature_supported(.FEATURE_TLS) == .YES else { throw TLSConfigurationError.unsupported }
                return try Self.accepted(TLSCredentials(loading: tls))
            }
            let core = ServerCore(configuration: configuration, routes: router.snapshot())
            let (fd, boundPort) = try configuration.unixSocketPath.map { (try UnixListenSocket.open(path: $0), 0) }
                ?? ListenSocket.open(host: configuration.host, port: configuration.port)
            defer { close(fd) }  // the daemon listens on its own copy
            guard let handle = Self.handOver(fd, core: core, credentials: credentials) else {
                Glibc.shutdown(fd, Int32(SHUT_RDWR))
                if let path = configuration.unixSocketPath { unlink(path) }
                throw HTTPServerStartError.daemonStartFailed
            }
            running = Daemon(handle: handle, core: core, credentials: credentials)
            core.scheduleSweep()
            port.store(boundPort, ordering: .sequentiallyConsistent)
        }
    }

    /// Reads the certificate and key again and serves them to new connections: a new daemon takes over the
    /// listening socket (no connection attempt is refused meanwhile), while the old one finishes the requests and
    /// long-polls of the connections it holds and stops once they are gone (at most `tlsDrainSeconds`). A file that
    /// does not load throws and leaves the running certificate in place.
    public func reloadTLS() throws {
        guard let tls = configuration.tls else { throw TLSConfigurationError.notConfigured }
        let credentials = try Self.accepted(TLSCredentials(loading: tls))
        let (replaced, refused): (Daemon?, Bool) = try daemon.withLock { running in
            guard let current = running, !current.core.shuttingDown.load(ordering: .sequentiallyConsistent) else {
                throw TLSConfigurationError.notRunning
            }
            let fd = current.quiesce()
            guard fd >= 0 else { throw HTTPServerStartError.daemonStartFailed }
            defer { close(fd) }
            if let handle = Self.handOver(fd, core: current.core, credentials: credentials) {
                running = Daemon(handle: handle, core: current.core, credentials: credentials)
                return (current, false)
            }
            // The pair passed the probe yet the daemon did not start: serve the old one again.
            if let handle = Self.handOver(fd, core: current.core, credentials: current.credentials) {
                running = Daemon(handle: handle, core: current.core, credentials: current.credentials)
                return (current, true)
            }
            Glibc.shutdown(fd, Int32(SHUT_RDWR))
            running = nil
            return (current, true)
        }
        if let replaced { drain(replaced) }
        if refused { throw HTTPServerStartError.daemonStartFailed }
    }

    /// The credentials if libmicrohttpd (GnuTLS) accepts them — the certificate parses and the key belongs to it —
    /// tried on a daemon that listens nowhere and is stopped at once; otherwise `rejected`. A listening socket is
    /// never handed to a daemon that might refuse its credentials, since MHD closes the socket it was given when
    /// it fails to start.
    private static func accepted(_ credentials: TLSCredentials) throws -> TLSCredentials {
        let flags = MHD_USE_TLS.rawValue | MHD_USE_NO_LISTEN_SOCKET.rawValue | MHD_USE_ERROR_LOG.rawValue
        let probe = startDaemonVA(flags: flags, options: [loggerOption()] + tlsOptions(credentials), handler: refuseEverything, context: nil)
        guard let probe else { throw TLSConfigurationError.rejected }
        MHD_stop_daemon(probe)
        return credentials
    }

    /// Starts a daemon on a close-on-exec copy of `fd`, which the daemon then owns (and closes if it fails).
    private static func handOver(_ fd: Int32, core: ServerCore, credentials: TLSCredentials?) -> OpaquePointer? {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return nil }
        return startDaemon(listenFD: copy, core: core, credentials: credentials)
    }

    /// Keeps a replaced daemon until it holds no connection, or for `tlsDrainSeconds`; releasing it stops it.
    private func drain(_ old: Daemon) {
        retired.withLock { $0.append(old) }
        let deadline = ContinuousClock.now + .seconds(configuration.tlsDrainSeconds)
        Thread.detachNewThread { [self] in
            while old.connections > 0 && ContinuousClock.now < deadline {
                usleep(20_000)
            }
            retired.withLock { list in list.removeAll { $0 === old } }
        }
    }

    /// Daemons still draining after a reload (for tests).
    var retiredDaemons: Int { retired.withLock { $0.count } }

    private static func startDaemon(listenFD: Int32, core: ServerCore, credentials: TLSCredentials?) -> OpaquePointer? {
        let configuration = core.configuration
        var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue
            | MHD_USE_ERROR_LOG.rawValue
        if credentials != nil { flags |= MHD_USE_TLS.rawValue }
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
            loggerOption(),
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
            MHD_OptionItem(option: .PER_IP_CONNECTION_LIMIT, value: configuration.unixSocketPath == nil ? max(0, limits.maxConnectionsPerAddress) : 0,
                           ptr_value: nil),
        ]
        if let credentials { options += tlsOptions(credentials) }
        return startDaemonVA(flags: flags, options: options, handler: accessHandler, context: context)
    }

    /// The certificate, key and priorities as MHD options (the C strings live as long as `credentials`).
    private static func tlsOptions(_ credentials: TLSCredentials) -> [MHD_OptionItem] {
        [
            MHD_OptionItem(option: .HTTPS_MEM_CERT, value: 0, ptr_value: UnsafeMutableRawPointer(credentials.certificate)),
            MHD_OptionItem(option: .HTTPS_MEM_KEY, value: 0, ptr_value: UnsafeMutableRawPointer(credentials.key)),
            MHD_OptionItem(option: .HTTPS_PRIORITIES, value: 0, ptr_value: UnsafeMutableRawPointer(credentials.priorities)),
        ]
    }

    /// MHD_start_daemon is variadic; its va_list twin takes the options (END appended here) as one MHD_OPTION.ARRAY.
    private static func startDaemonVA(flags: UInt32, options: [MHD_OptionItem], handler: MHD_AccessHandlerCallback,
                                      context: UnsafeMutableRawPointer?) -> OpaquePointer? {
        var items = options + [MHD_OptionItem(option: .END, value: 0, ptr_value: nil)]
        return items.withUnsafeMutableBufferPointer { buffer in
            withVaList([Int32(bitPattern: MHD_OPTION.ARRAY.rawValue), buffer.baseAddress!,
                        Int32(bitPattern: MHD_OPTION.END.rawValue)]) { arguments in
                MHD_start_daemon_va(flags, 0, nil, nil, handler, context, arguments)
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
        retired.withLock { $0 = [] }
        if let path = configuration.unixSocketPath { unlink(path) }
    }

    /// Runs `action` on every SIGHUP (a certificate renewed on disk, say) until the returned source is cancelled.
    public static func onHangup(_ action: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)  // let the dispatch source, not the default action (exit), see it
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "HTTPServer.hangup"))
        source.setEventHandler(handler: action)
        source.resume()
        return source
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
