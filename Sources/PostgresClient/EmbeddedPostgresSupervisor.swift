import Foundation
import Synchronization

/// Keeps an embedded cluster running. A killed or crashed postmaster would otherwise stay down while the
/// coordinator answers 503 forever: the supervisor checks it every `checkInterval`, restarts it with capped
/// exponential backoff, and reports the process unhealthy once `unhealthyAfter` restarts in a row have failed,
/// so a liveness probe (`/healthz`) can have the whole process restarted by its own supervisor.
public final class EmbeddedPostgresSupervisor: Sendable {
    /// How often to look and how patiently to restart.
    public struct Policy: Sendable, Equatable {
        public var checkInterval: Double
        public var initialBackoff: Double
        public var maxBackoff: Double
        public var unhealthyAfter: Int

        public init(checkInterval: Double = 1, initialBackoff: Double = 0.5, maxBackoff: Double = 30, unhealthyAfter: Int = 5) {
            self.checkInterval = checkInterval
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.unhealthyAfter = unhealthyAfter
        }

        /// Delay before the next restart after `failures` failed ones (1, 2, 4, … × initial, capped).
        func delay(afterFailures failures: Int) -> Double {
            min(maxBackoff, initialBackoff * pow(2, Double(max(0, failures - 1))))
        }
    }

    public enum Health: Sendable, Equatable {
        case healthy
        /// Down, and restarts have failed fewer than `unhealthyAfter` times in a row.
        case recovering(failures: Int)
        /// Restarts keep failing; the last error says why.
        case failed(String)
    }

    private struct State {
        var failures = 0
        var lastError = ""
        var nextAttempt = ContinuousClock.now
        var restarts = 0
        var stopped = false
    }

    private let cluster: EmbeddedPostgres
    private let policy: Policy
    private let log: @Sendable (String) -> Void
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    public init(cluster: EmbeddedPostgres, policy: Policy = Policy(), log: @escaping @Sendable (String) -> Void) {
        self.cluster = cluster
        self.policy = policy
        self.log = log
        let thread = Thread { [self] in self.loop() }
        thread.name = "fleetadapt.postgres-supervisor"
        thread.start()
    }

    public var health: Health {
        state.withLock { s in
            if s.failures == 0 { return .healthy }
            return s.failures >= policy.unhealthyAfter ? .failed(s.lastError) : .recovering(failures: s.failures)
        }
    }

    /// Restarts that succeeded since start.
    public var restartCount: Int { state.withLock { $0.restarts } }

    /// Stops supervising (before the cluster is stopped on purpose); waits for the loop to end.
    public func shutdown() {
        let first = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        wake.signal()
        done.wait()
    }

    private func loop() {
        defer { done.signal() }
        while !state.withLock({ $0.stopped }) {
            check()
            _ = wake.wait(timeout: .now() + policy.checkInterval)
        }
    }

    private func check() {
        if (try? cluster.isRunning()) == true {
            let wasDown = state.withLock { s -> Bool in
                defer { s.failures = 0 }
                return s.failures > 0
            }
            if wasDown { log("embedded PostgreSQL is running again") }
            return
        }
        let due = state.withLock { s in !s.stopped && ContinuousClock.now >= s.nextAttempt }
        guard due else { return }
        log("embedded PostgreSQL in \(cluster.dataDirectory) is not running; restarting it")
        do {
            _ = try cluster.start()
            state.withLock { s in
                s.failures = 0
                s.restarts += 1
            }
            log("embedded PostgreSQL restarted")
        } catch {
            let (failures, delay) = state.withLock { s -> (Int, Double) in
                s.failures += 1
                s.lastError = String(describing: error)
                let delay = policy.delay(afterFailures: s.failures)
                s.nextAttempt = ContinuousClock.now + .milliseconds(Int(delay * 1000))
                return (s.failures, delay)
            }
            log("embedded PostgreSQL restart \(failures) failed (next try in \(String(format: "%.1f", delay)) s): \(error)")
        }
    }
}
