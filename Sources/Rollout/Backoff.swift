import Foundation

/// Retry delay: attempt^exponent seconds × scale, capped, ±jitter (river's default is attempt^4 ±10%).
/// The one place the formula lives: the job store computes every delay here and hands it to SQL as a number.
public struct Backoff: Sendable, Equatable {
    public var exponent: Double = 4
    public var capSeconds: Double = 600
    public var scale: Double = 1
    public var jitter: Double = 0.1

    public init(exponent: Double = 4, capSeconds: Double = 600, scale: Double = 1, jitter: Double = 0.1) {
        self.exponent = exponent
        self.capSeconds = capSeconds
        self.scale = scale
        self.jitter = jitter
    }

    /// The delay before a job that used `attempt` attempts runs again, before jitter: min(attempt^exponent, cap) × scale.
    public func baseDelay(attempt: Int) -> TimeInterval {
        min(pow(Double(attempt), exponent), capSeconds) * scale
    }

    /// The delay with jitter drawn from `unit` (a value in 0...1): base × (1 − jitter + 2 × jitter × unit).
    public func delay(attempt: Int, unit: Double) -> TimeInterval {
        baseDelay(attempt: attempt) * (1 - jitter + 2 * jitter * unit)
    }

    /// The delay with a random jitter, within base × [1 − jitter, 1 + jitter].
    public func delay(attempt: Int) -> TimeInterval {
        delay(attempt: attempt, unit: Double.random(in: 0...1))
    }
}
