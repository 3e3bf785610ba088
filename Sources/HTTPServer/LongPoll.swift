import Synchronization

/// A request answered later: the connection stays suspended until `complete` or the deadline.
/// The first completion wins; later ones return false.
public final class LongPoll: Sendable {
    enum Phase {
        /// The handler is still running; a completion now is queued without suspending.
        case handling
        /// The connection is suspended; `resume` wakes it.
        case suspended
        case completed
    }

    struct State {
        var phase: Phase = .handling
        var response: HTTPResponse?
        var deadline: ContinuousClock.Instant?
        var onTimeout: (@Sendable () -> HTTPResponse)?
    }

    let state = Mutex(State())
    /// Wakes the suspended connection; installed by the server for this connection.
    let resume: @Sendable () -> Void

    init(resume: @escaping @Sendable () -> Void) {
        self.resume = resume
    }

    /// Sets how long to wait and what to answer then. Call before returning nil from the handler.
    public func wait(timeout: Duration, onTimeout: @escaping @Sendable () -> HTTPResponse) {
        state.withLock {
            $0.deadline = ContinuousClock.now + timeout
            $0.onTimeout = onTimeout
        }
    }

    public var deadline: ContinuousClock.Instant? { state.withLock { $0.deadline } }

    public var isCompleted: Bool { state.withLock { $0.phase == .completed } }

    /// Answers the request (from any thread). Returns false when it was already answered or timed out.
    @discardableResult
    public func complete(_ response: HTTPResponse) -> Bool {
        let wasSuspended: Bool? = state.withLock { s in
            switch s.phase {
            case .completed: return nil
            case .handling:
                s.phase = .completed
                s.response = response
                return false
            case .suspended:
                s.phase = .completed
                s.response = response
                return true
            }
        }
        guard let wasSuspended else { return false }
        if wasSuspended { resume() }
        return true
    }

    /// Completes with the timeout response when the deadline passed.
    func expireIfDue(_ now: ContinuousClock.Instant) -> Bool {
        let response: HTTPResponse? = state.withLock { s in
            guard s.phase != .completed, let d = s.deadline, d <= now else { return nil }
            return s.onTimeout?() ?? HTTPResponse(status: 204)
        }
        guard let response else { return false }
        return complete(response)
    }

    /// Completes now with the timeout response (shutdown).
    func expireNow() {
        let response = state.withLock { $0.onTimeout?() } ?? HTTPResponse(status: 503)
        complete(response)
    }
}
