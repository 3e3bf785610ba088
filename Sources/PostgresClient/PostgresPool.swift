import Foundation
import Synchronization

/// A bounded set of connections shared by worker threads. Connections open lazily; a broken one is
/// dropped on return, so after a server restart the next checkout opens a fresh connection.
public final class PostgresPool: Sendable {
    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var closed = false
        var inUse = 0
        var waits = 0
        var errors = 0
    }

    /// For metrics: connections checked out now, open (idle or in use), the pool's size, checkouts that had to
    /// wait for a free connection, and checkouts that failed (no connection free in time, or none could be opened).
    public struct Statistics: Sendable {
        public var inUse: Int
        public var open: Int
        public var max: Int
        public var waitsTotal: Int
        public var errorsTotal: Int
    }

    public var statistics: Statistics {
        state.withLock { Statistics(inUse: $0.inUse, open: $0.open, max: maxConnections, waitsTotal: $0.waits, errorsTotal: $0.errors) }
    }

    public let configuration: PostgresConfiguration
    private let maxConnections: Int
    private let checkoutTimeout: Double
    private let state = Mutex(State())
    /// Counts connections that may be taken (idle or not yet opened); waiters block on it.
    private let available: DispatchSemaphore

    public init(configuration: PostgresConfiguration, maxConnections: Int = 10, checkoutTimeoutSeconds: Double = 5) {
        self.configuration = configuration
        self.maxConnections = max(1, maxConnections)
        self.checkoutTimeout = checkoutTimeoutSeconds
        self.available = DispatchSemaphore(value: max(1, maxConnections))
    }

    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        if available.wait(timeout: .now()) != .success {
            state.withLock { $0.waits += 1 }
            guard available.wait(timeout: .now() + checkoutTimeout) == .success else {
                state.withLock { $0.errors += 1 }
                throw PostgresError(kind: .poolTimeout, message: "no database connection free within \(checkoutTimeout) s (pool of \(maxConnections))")
            }
        }
        defer { available.signal() }
        let reused: PostgresConnection? = try state.withLock { s in
            if s.closed { throw PostgresError(kind: .connection, message: "the pool is closed") }
            if let c = s.idle.popLast() { return c }
            s.open += 1
            return nil
        }
        let connection: PostgresConnection
        if let reused {
            connection = reused
        } else {
            do {
                connection = try PostgresConnection.connect(configuration)
            } catch {
                state.withLock { $0.open -= 1; $0.errors += 1 }
                throw error
            }
        }
        state.withLock { $0.inUse += 1 }
        defer { state.withLock { $0.inUse -= 1 } }
        do {
            let value = try body(connection)
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    private func release(_ connection: PostgresConnection) {
        state.withLock { s in
            if connection.isHealthy && !s.closed {
                s.idle.append(connection)
            } else {
                s.open -= 1
            }
        }
    }

    public func withTransaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try withConnection { try $0.withTransaction(body) }
    }

    @discardableResult
    public func query(_ q: PostgresQuery) throws -> PostgresResult {
        try withConnection { try $0.query(q) }
    }

    /// Closes idle connections and refuses new checkouts; connections in use close when returned.
    public func close() {
        let idle = state.withLock { s -> [PostgresConnection] in
            s.closed = true
            defer { s.idle.removeAll() }
            s.open -= s.idle.count
            return s.idle
        }
        _ = idle // released here, closed by deinit
    }
}
