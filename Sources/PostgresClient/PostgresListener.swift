import Foundation
import Synchronization

/// LISTEN on a dedicated connection and a thread of its own. After the connection breaks it reconnects,
/// LISTENs again and calls `onReconnect` (notifications sent meanwhile are lost: callers re-check the database).
public final class PostgresListener: Sendable {
    private let stopped = StopFlag()
    private let finished = DispatchSemaphore(value: 0)

    public init(configuration: PostgresConfiguration, channels: [String],
                onNotification: @escaping @Sendable (_ channel: String, _ payload: String) -> Void,
                onReconnect: (@Sendable () -> Void)? = nil) throws {
        // Connect once up front so a bad configuration fails here, not silently on the thread.
        let first = try PostgresConnection.connect(configuration)
        for c in channels { try first.listen(c) }
        let box = ConnectionBox(first)
        let thread = Thread { [stopped, finished] in
            var connection: PostgresConnection? = box.take()
            var delay = 0.1
            while !stopped.isSet {
                do {
                    if connection == nil {
                        let c = try PostgresConnection.connect(configuration)
                        for ch in channels { try c.listen(ch) }
                        connection = c
                        delay = 0.1
                        onReconnect?()
                    }
                    for n in try connection!.waitForNotifications(timeout: 0.25) {
                        onNotification(n.channel, n.payload)
                    }
                } catch {
                    connection = nil
                    Thread.sleep(forTimeInterval: delay)
                    delay = min(delay * 2, 2)
                }
            }
            finished.signal()
        }
        thread.name = "fleetadapt.pg-listener"
        thread.start()
    }

    /// Stops the thread and closes its connection (returns within about a quarter second).
    public func stop() {
        if stopped.set() { return }
        finished.wait()
    }
}

/// Hands the first connection to the listener thread exactly once.
/// `@unchecked Sendable`: it wraps the PGconn handle, and the mutex makes the single hand-over safe.
private final class ConnectionBox: @unchecked Sendable {
    private let lock = Mutex<Bool>(false)
    private var connection: PostgresConnection?

    init(_ c: PostgresConnection) { connection = c }

    func take() -> PostgresConnection? {
        lock.withLock { taken in
            defer { taken = true; connection = nil }
            return taken ? nil : connection
        }
    }
}

/// A flag shared with the listener thread (an `Atomic` cannot be captured, a reference to one can).
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    /// Sets the flag; returns whether it was already set.
    func set() -> Bool { value.exchange(true, ordering: .acquiringAndReleasing) }
}
