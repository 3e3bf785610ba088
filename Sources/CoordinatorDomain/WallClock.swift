import Foundation

/// This replica's "now", injected, for what only this process compares (record stamps, token checks, metrics).
/// Leases, expiry, heartbeats and retry backoff are timed by the database's clock instead (`now()` in SQL), which
/// every replica shares: a replica whose clock runs ahead must not revoke a lease another replica granted.
public struct WallClock: Sendable {
    public var now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date) {
        self.now = now
    }

    /// The system clock truncated to microseconds, PostgreSQL's timestamp precision, so that a
    /// value written and read back compares equal.
    public static let system = WallClock {
        let t = Date().timeIntervalSince1970
        return Date(timeIntervalSince1970: (t * 1_000_000).rounded(.down) / 1_000_000)
    }
}
