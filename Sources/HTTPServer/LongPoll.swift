internal import CMicroHTTPD
import Dispatch
import Foundation
import Synchronization

/// A parked request. The handler calls `wait(timeout:onTimeout:)` and returns nil; the server then suspends the MHD
/// connection, and whichever comes first of `complete(_:)` (any thread), the deadline, or server shutdown answers it.
/// All transitions happen under one lock, and the MHD connection is resumed at most once and never after MHD has
/// finished with it (`detach`), so completions racing each other or a closed connection cannot double-resume.
public final class LongPoll: Sendable {
    enum Phase: Sendable {
        /// The handler is still running (or the poll is not attached to a connection).
        case handling
        /// The MHD connection is suspended; `connection` holds its address.
        case suspended
        case completed
    }

    struct State: Sendable {
        var deadline: ContinuousClock.Instant
        var onTimeout: @Sendable () -> HTTPResponse
        var phase: Phase = .handling
        /// `MHD_Connection *` as a bit pattern (a C pointer is not Sendable; it is only used under this lock).
        var connection: UInt = 0
        var response: HTTPResponse?
        /// Set once MHD has released the request: from then on the connection pointer must not be touched.
        var detached = false
        /// The connection's socket while suspended (-1 otherwise); valid until `detach`, which MHD's
        /// request-completed callback runs before it closes the socket.
        var fd: Int32 = -1
        /// Runs when the completing response was not sent whole (see `complete(_:ifUndelivered:)`).
        var onUndelivered: (@Sendable () -> Void)?
    }

    private let state: Mutex<State>

    /// A poll answered by `onTimeout` after `timeout` unless completed first. Handlers normally get theirs from
    /// the router; this initialiser exists for in-process tests of handlers.
    public init(timeout: Duration = .seconds(30),
                onTimeout: @escaping @Sendable () -> HTTPResponse = { .noContent }) {
        state = Mutex(State(deadline: .now + timeout, onTimeout: onTimeout))
    }

    /// When the poll gives up waiting.
    public var deadline: ContinuousClock.Instant { state.withLock { $0.deadline } }

    /// Sets the deadline and the answer given when it passes; call before returning nil from the handler.
    public func wait(timeout: Duration, onTimeout: @escaping @Sendable () -> HTTPResponse) {
        state.withLock {
            $0.deadline = .now + timeout
            $0.onTimeout = onTimeout
        }
    }

    /// Answers the parked request. Thread-safe; the first completion wins and later ones return false.
    /// `ifUndelivered` runs (once, on an MHD thread) when MHD reports that this response did not reach the
    /// client whole, so work handed out in it can be given back.
    @discardableResult
    public func complete(_ response: HTTPResponse, ifUndelivered: (@Sendable () -> Void)? = nil) -> Bool {
        state.withLock { s in
            guard s.phase != .completed else { return false }
            let wasSuspended = s.phase == .suspended
            s.phase = .completed
            s.response = response
            s.onUndelivered = ifUndelivered
            if wasSuspended && !s.detached, let connection = OpaquePointer(bitPattern: s.connection) {
                // Under the lock: ordered after the suspend (also under the lock) and before any `detach`.
                MHD_resume_connection(connection)
            }
            return true
        }
    }

    public var isCompleted: Bool { state.withLock { $0.phase == .completed } }

    /// True when the parked request's client has closed its side of the connection (a restarted agent, a proxy
    /// that gave up): MHD does not watch suspended connections, so this peeks at the socket. Work must not be
    /// handed to such a poll. False while the handler runs, after completion, and in-process.
    public var clientHasGone: Bool {
        state.withLock { s in
            guard s.phase == .suspended, !s.detached, s.fd >= 0 else { return false }
            var byte: UInt8 = 0
            let n = recv(s.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if n > 0 { return false }  // pipelined bytes: still there
            if n == 0 { return true }  // orderly shutdown by the client
            return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)  // reset or other error
        }
    }

    /// Completes with the timeout response (deadline passed or server shutting down).
    func expire() {
        let onTimeout = state.withLock { $0.phase == .completed ? nil : $0.onTimeout }
        guard let onTimeout else { return }
        complete(onTimeout())
    }

    /// Called on the MHD worker thread after the handler returned nil: suspends the connection unless the poll
    /// was completed meanwhile, in which case the response to send now is returned.
    func suspend(_ connection: OpaquePointer, fd: Int32) -> HTTPResponse? {
        state.withLock { s in
            if s.phase == .completed { return s.response ?? .noContent }
            s.phase = .suspended
            s.fd = fd
            s.connection = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(connection)))
            MHD_suspend_connection(connection)
            return nil
        }
    }

    /// The response after MHD resumed the connection.
    func takeResponse() -> HTTPResponse? {
        state.withLock { s in
            defer { s.response = nil }
            return s.response
        }
    }

    /// MHD is done with the request; `delivered` says whether the response was sent whole.
    func finished(delivered: Bool) {
        let undelivered = state.withLock { s in
            defer { s.onUndelivered = nil }
            return delivered ? nil : s.onUndelivered
        }
        undelivered?()
        detach()
    }

    /// MHD is done with the connection (request completed or aborted): never resume it again.
    func detach() {
        state.withLock { s in
            s.detached = true
            s.phase = .completed
            s.fd = -1
        }
    }

    /// Arms the single-shot deadline timer on a shared queue.
    func scheduleExpiry(on queue: DispatchQueue) {
        let remaining = deadline - .now
        let nanos = max(0, remaining.components.seconds * 1_000_000_000
                        + remaining.components.attoseconds / 1_000_000_000)
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: nanos))) { [self] in
            expire()
        }
    }
}
