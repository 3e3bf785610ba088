import Foundation
import Synchronization

/// How many failed authentications one client address may make: a token bucket of `burst` failures that refills
/// at `perSecond`. Once it is empty, every request from that address that presents a credential is refused with
/// 429 until a token is back, so a guesser learns nothing, not even from the right key.
public struct AuthFailurePolicy: Sendable {
    public var burst: Double = 20
    public var perSecond: Double = 1
    /// Addresses remembered at most; beyond, refilled buckets are forgotten first, then the oldest.
    public var maxTrackedAddresses = 100_000

    public init(burst: Double = 20, perSecond: Double = 1) {
        self.burst = burst
        self.perSecond = perSecond
    }
}

/// The per-address buckets of `AuthFailurePolicy`; the caller passes "now" (a monotonic instant).
package final class AuthFailureLimiter: Sendable {
    private struct Bucket {
        package var tokens: Double
        package var updated: ContinuousClock.Instant
    }

    package let policy: AuthFailurePolicy
    private let buckets = Mutex<[String: Bucket]>([:])

    package init(policy: AuthFailurePolicy) {
        self.policy = policy
    }

    /// Seconds until `address` may try again, or nil when it may try now.
    package func retryAfter(_ address: String, now: ContinuousClock.Instant) -> Int? {
        buckets.withLock { table in
            guard var bucket = table[address] else { return nil }
            refill(&bucket, now: now)
            table[address] = bucket
            guard bucket.tokens < 1 else { return nil }
            return max(1, Int(((1 - bucket.tokens) / policy.perSecond).rounded(.up)))
        }
    }

    package func recordFailure(_ address: String, now: ContinuousClock.Instant) {
        buckets.withLock { table in
            var bucket = table[address] ?? Bucket(tokens: policy.burst, updated: now)
            refill(&bucket, now: now)
            bucket.tokens = max(0, bucket.tokens - 1)
            table[address] = bucket
            if table.count > policy.maxTrackedAddresses { prune(&table, now: now) }
        }
    }

    private func refill(_ bucket: inout Bucket, now: ContinuousClock.Instant) {
        let elapsed = now - bucket.updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        bucket.tokens = min(policy.burst, bucket.tokens + max(0, seconds) * policy.perSecond)
        bucket.updated = now
    }

    private func prune(_ table: inout [String: Bucket], now: ContinuousClock.Instant) {
        for (address, var bucket) in table {
            refill(&bucket, now: now)
            if bucket.tokens >= policy.burst { table[address] = nil }
        }
        if table.count > policy.maxTrackedAddresses {
            let oldest = table.sorted { $0.value.updated < $1.value.updated }.prefix(table.count - policy.maxTrackedAddresses / 2)
            for (address, _) in oldest { table[address] = nil }
        }
    }
}
