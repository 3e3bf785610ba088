import FleetAPI
import Foundation

/// What a running campaign should do next, from the job counts of its released waves and its spec. Pure: the
/// coordinator's `CampaignScheduler` counts (under the campaign's row lock), calls `decide`, and writes the outcome.
public enum WaveDecision: Equatable, Sendable {
    /// Jobs are still open and nothing crossed a threshold: wait.
    case wait
    /// Release wave `n` (the released waves all ran and met the success threshold).
    case release(Int)
    /// Pause the campaign, for this reason.
    case pause(String)
    /// Abort the campaign (cancel its queued jobs), for this reason.
    case abort(String)
    /// Roll the campaign back (every device it changed returns to its previous config), for this reason.
    case rollback(String)
    /// Every wave ran and met the success threshold.
    case complete

    /// Job counts over the released waves (0 through `releasedWave`).
    public struct Counts: Equatable, Sendable {
        public var succeeded: Int
        /// Failed plus timed out (the coordinator also counts rejected and operator-canceled jobs here).
        public var failures: Int
        /// Queued, leased, running, and succeeded with follow-ups still pending (the next wave may apply the
        /// aggregate those follow-ups fold).
        public var open: Int

        public init(succeeded: Int = 0, failures: Int = 0, open: Int = 0) {
            self.succeeded = succeeded
            self.failures = failures
            self.open = open
        }

        /// From counts by job state, where `followup_pending` counts succeeded jobs whose follow-ups are pending.
        public init(byState counts: [String: Int]) {
            succeeded = counts["succeeded"] ?? 0
            failures = (counts["failed"] ?? 0) + (counts["timed_out"] ?? 0)
            open = (counts["queued"] ?? 0) + (counts["leased"] ?? 0) + (counts["running"] ?? 0) + (counts["followup_pending"] ?? 0)
        }

        public var executed: Int { succeeded + failures }
    }

    /// Failures over the abort threshold (once `min_executed` jobs ran) pause or abort, even with jobs open;
    /// otherwise, once nothing is open, a success rate under the threshold pauses, and one at or over it releases
    /// the next wave or, after the last, completes.
    public static func decide(_ counts: Counts, releasedWave released: Int, waveCount: Int, spec: DomainRequest) -> WaveDecision {
        let executed = counts.executed
        let abort = spec.effectiveAbort
        let rollout = spec.effectiveRollout
        if executed >= abort.minExecuted, executed > 0,
           Double(counts.failures) * 100 / Double(executed) > abort.failureThresholdPct {
            let reason = "\(counts.failures) of \(executed) executed jobs failed, over the \(pct(abort.failureThresholdPct)) abort threshold"
            switch abort.action {
            case .abort?: return .abort(reason)
            case .rollback?: return .rollback(reason)
            case .pause?, nil: return .pause(reason)
            }
        }
        guard counts.open == 0 else { return .wait }
        let rate = executed == 0 ? 100 : Double(counts.succeeded) * 100 / Double(executed)
        if rate < rollout.successThresholdPct {
            return .pause("waves 0–\(released) succeeded at \(pct(rate)), under the \(pct(rollout.successThresholdPct)) needed to continue")
        }
        if released + 1 < waveCount { return .release(released + 1) }
        return .complete
    }

    public static func pct(_ x: Double) -> String { String(format: "%.1f%%", x) }
}
