import FleetAPI
import Foundation
import Testing
@testable import Rollout

/// Every branch of the wave decision, from counts alone.
@Suite struct WaveDecisionTests {
    static func spec(success: Double = 80, failure: Double = 20, minExecuted: Int = 5,
                     action: DomainRequest.Abort.Action? = nil) -> DomainRequest {
        DomainRequest(name: "d", modelID: UUID(), selector: .init(labels: [:]),
                      rollout: .init(successThresholdPct: success),
                      abort: .init(failureThresholdPct: failure, minExecuted: minExecuted, action: action),
                      job: .init(loss: .tent, steps: 1, timeoutS: 60, maxAttempts: 1))
    }

    typealias Counts = WaveDecision.Counts

    @Test func theRollbackActionRollsBack() {
        #expect(WaveDecision.decide(Counts(succeeded: 3, failures: 2), releasedWave: 0, waveCount: 2, spec: Self.spec(action: .rollback))
                == .rollback("2 of 5 executed jobs failed, over the 20.0% abort threshold"))
        #expect(WaveDecision.decide(Counts(succeeded: 4, failures: 1), releasedWave: 0, waveCount: 2, spec: Self.spec(action: .rollback))
                == .release(1))
    }

    @Test func openJobsWait() {
        #expect(WaveDecision.decide(Counts(succeeded: 3, failures: 0, open: 1), releasedWave: 0, waveCount: 3, spec: Self.spec()) == .wait)
    }

    @Test func allRunAndSuccessfulReleasesTheNextWave() {
        #expect(WaveDecision.decide(Counts(succeeded: 10), releasedWave: 0, waveCount: 3, spec: Self.spec()) == .release(1))
        #expect(WaveDecision.decide(Counts(succeeded: 10), releasedWave: 1, waveCount: 3, spec: Self.spec()) == .release(2))
    }

    @Test func afterTheLastWaveItCompletes() {
        #expect(WaveDecision.decide(Counts(succeeded: 10), releasedWave: 2, waveCount: 3, spec: Self.spec()) == .complete)
        // A wave with nothing executed counts as fully successful.
        #expect(WaveDecision.decide(Counts(), releasedWave: 0, waveCount: 1, spec: Self.spec()) == .complete)
    }

    @Test func aSuccessRateUnderTheThresholdPauses() {
        // 4 of 5 = 80%: enough. 3 of 4 = 75%: not (the failure rate, 25%, is over 20% but only 4 ran, under min_executed).
        #expect(WaveDecision.decide(Counts(succeeded: 4, failures: 1), releasedWave: 0, waveCount: 2,
                                    spec: Self.spec(failure: 50)) == .release(1))
        #expect(WaveDecision.decide(Counts(succeeded: 3, failures: 1), releasedWave: 0, waveCount: 2, spec: Self.spec())
                == .pause("waves 0–0 succeeded at 75.0%, under the 80.0% needed to continue"))
    }

    @Test func failuresOverTheThresholdPauseByDefaultEvenWithJobsOpen() {
        #expect(WaveDecision.decide(Counts(succeeded: 3, failures: 2, open: 7), releasedWave: 0, waveCount: 3, spec: Self.spec())
                == .pause("2 of 5 executed jobs failed, over the 20.0% abort threshold"))
        #expect(WaveDecision.decide(Counts(succeeded: 3, failures: 2, open: 7), releasedWave: 0, waveCount: 3,
                                    spec: Self.spec(action: .pause))
                == .pause("2 of 5 executed jobs failed, over the 20.0% abort threshold"))
    }

    @Test func failuresOverTheThresholdAbortWhenAsked() {
        #expect(WaveDecision.decide(Counts(succeeded: 3, failures: 2, open: 7), releasedWave: 0, waveCount: 3,
                                    spec: Self.spec(action: .abort))
                == .abort("2 of 5 executed jobs failed, over the 20.0% abort threshold"))
    }

    @Test func failuresCountOnlyOnceMinExecutedRan() {
        // 2 of 4 failed (50%) but min_executed is 5: keep waiting while jobs are open.
        #expect(WaveDecision.decide(Counts(succeeded: 2, failures: 2, open: 3), releasedWave: 0, waveCount: 3,
                                    spec: Self.spec(action: .abort)) == .wait)
        // The fifth execution crosses it.
        #expect(WaveDecision.decide(Counts(succeeded: 2, failures: 3, open: 2), releasedWave: 0, waveCount: 3,
                                    spec: Self.spec(action: .abort)) == .abort("3 of 5 executed jobs failed, over the 20.0% abort threshold"))
    }

    @Test func exactlyAtTheFailureThresholdIsNotOver() {
        // 1 of 5 = 20%: not over 20%.
        #expect(WaveDecision.decide(Counts(succeeded: 4, failures: 1, open: 1), releasedWave: 0, waveCount: 2,
                                    spec: Self.spec(action: .abort)) == .wait)
    }

    @Test func minExecutedZeroStillNeedsAnExecution() {
        #expect(WaveDecision.decide(Counts(open: 3), releasedWave: 0, waveCount: 2, spec: Self.spec(minExecuted: 0, action: .abort)) == .wait)
    }

    @Test func countsByStateFoldFailuresAndOpenStates() {
        let counts = Counts(byState: ["succeeded": 4, "failed": 1, "timed_out": 2, "queued": 1, "leased": 1, "running": 1,
                                      "followup_pending": 1, "canceled": 9])
        #expect(counts == Counts(succeeded: 4, failures: 3, open: 4))
        #expect(counts.executed == 7)
    }
}
