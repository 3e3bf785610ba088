import Foundation
import Testing
@testable import Rollout

@Suite struct BackoffTests {
    @Test func growsAsAttemptToTheExponentTimesScale() {
        let b = Backoff(exponent: 4, capSeconds: 600, scale: 1, jitter: 0)
        #expect((1...4).map { b.baseDelay(attempt: $0) } == [1, 16, 81, 256])
        #expect((1...4).map { b.delay(attempt: $0) } == [1, 16, 81, 256])
        #expect(Backoff(exponent: 2, scale: 0.5, jitter: 0).baseDelay(attempt: 3) == 4.5)
    }

    @Test func isCappedBeforeScaling() {
        let b = Backoff(exponent: 4, capSeconds: 600, scale: 0.001, jitter: 0)
        #expect(b.baseDelay(attempt: 5) == 600 * 0.001)
        #expect(b.baseDelay(attempt: 50) == 600 * 0.001)
    }

    @Test func jitterStaysWithinItsBoundsAndReachesThem() {
        let b = Backoff(exponent: 4, capSeconds: 600, scale: 1, jitter: 0.1)
        #expect(abs(b.delay(attempt: 2, unit: 0) - 16 * 0.9) < 1e-9)
        #expect(abs(b.delay(attempt: 2, unit: 1) - 16 * 1.1) < 1e-9)
        #expect(abs(b.delay(attempt: 2, unit: 0.5) - 16) < 1e-9)
        for _ in 0..<1_000 {
            let d = b.delay(attempt: 3)
            #expect(d >= 81 * 0.9 - 1e-9 && d <= 81 * 1.1 + 1e-9)
        }
    }

    @Test func theDefaultsAreRiversAttemptToTheFourthPlusOrMinusTenPercent() {
        #expect(Backoff() == Backoff(exponent: 4, capSeconds: 600, scale: 1, jitter: 0.1))
    }
}
