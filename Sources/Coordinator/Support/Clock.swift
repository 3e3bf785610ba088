import Foundation

/// "Now", injected so that leases, timeouts and backoff are testable without sleeping.
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
