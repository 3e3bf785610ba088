import CoordinatorStore
import Foundation
import PostgresClient
import Rollout
import Synchronization

/// Background work of every coordinator replica: rescue expired leases, wake the devices whose retry became ready,
/// finish the follow-ups of successes whose result request did not, re-evaluate every running campaign
/// periodically, bring the fleet's configs to a newly published model, and turn NOTIFY on the jobs channel into
/// long-poll wake-ups (with a periodic sweep, since NOTIFY is only a hint). A step that fails logs; the loop goes on.
package final class Maintenance: Sendable {
    private let stop = StopFlag()
    private let done = DispatchSemaphore(value: 0)
    private let listener: PostgresListener?

    /// - Parameters:
    ///   - evaluateEvery: seconds between re-evaluations of every running campaign (a campaign whose evaluation
    ///     failed after a result, or whose jobs ended without a request, still advances).
    ///   - followupGrace: seconds a success's follow-ups are left to the result request before this loop takes them.
    /// What the loop works with: the stores it rescues and lists from, and the use cases it finishes.
    package struct Work: Sendable {
        package let jobs: JobStore
        package let campaigns: CampaignStore
        package let scheduler: CampaignScheduler
        package let followups: JobFollowups
        package let replanner: Replanner
        package let waiters: JobWaiters
        package let backoff: Backoff
        package let clock: WallClock
        /// Drift triggers, evaluated every `triggerEvery` seconds (nil: none).
        package var triggers: TriggerEvaluator?

        package init(jobs: JobStore, campaigns: CampaignStore, scheduler: CampaignScheduler, followups: JobFollowups, replanner: Replanner,
             waiters: JobWaiters, backoff: Backoff, clock: WallClock) {
            self.jobs = jobs
            self.campaigns = campaigns
            self.scheduler = scheduler
            self.followups = followups
            self.replanner = replanner
            self.waiters = waiters
            self.backoff = backoff
            self.clock = clock
        }
    }

    /// Starts the loop's thread (and the LISTEN connection, on `configuration`).
    package init(work: Work, configuration: PostgresConfiguration, replansFleet: Bool = true, tick: Double = 0.5, sweepEvery: Double = 2,
         evaluateEvery: Double = 5, followupGrace: Double = 2) {
        let waiters = work.waiters
        listener = try? PostgresListener(configuration: configuration, channels: [JobStore.channel], onNotification: { _, payload in
            waiters.wake(device: UUID(uuidString: payload))
        }, onReconnect: { waiters.wake(device: nil) })
        let stop = self.stop
        let done = self.done
        let thread = Thread {
            // Local intervals: a monotonic clock (the leases themselves are timed by the database).
            let monotonic = ContinuousClock()
            var lastSweep: ContinuousClock.Instant?
            var lastEvaluation: ContinuousClock.Instant?
            var lastTriggers: ContinuousClock.Instant?
            var readySince: Date?
            while !stop.isSet {
                var touched = Set<UUID>()
                do {
                    touched.formUnion(try work.jobs.rescueExpired(backoff: work.backoff))
                } catch {
                    Log.error("maintenance: lease rescue: \(error)")
                }
                do { readySince = try work.jobs.notifyBecameReady(since: readySince) } catch {
                    Log.error("maintenance: ready-job wake-ups: \(error)")
                }
                do {
                    for pending in try work.jobs.pendingFollowups(graceSeconds: followupGrace) {
                        do {
                            if try work.followups.finish(job: pending.job, wait: false) == .finished { touched.insert(pending.campaign) }
                        } catch {
                            Log.error("maintenance: follow-ups of job \(pending.job.uuidString.lowercased()): \(error)")
                        }
                    }
                } catch {
                    Log.error("maintenance: pending follow-ups: \(error)")
                }
                if lastEvaluation.map({ monotonic.now - $0 >= .seconds(evaluateEvery) }) ?? true {
                    lastEvaluation = monotonic.now
                    do { touched.formUnion(try work.campaigns.runningCampaigns()) } catch {
                        Log.error("maintenance: running campaigns: \(error)")
                    }
                }
                for campaign in touched.sorted(by: { $0.uuidString < $1.uuidString }) {
                    do { try work.scheduler.evaluate(campaign, now: work.clock.now()) } catch {
                        Log.error("maintenance: evaluation of campaign \(campaign.uuidString.lowercased()): \(error)")
                    }
                }
                if let triggers = work.triggers, lastTriggers.map({ monotonic.now - $0 >= .seconds(2) }) ?? true {
                    lastTriggers = monotonic.now
                    triggers.evaluateAll()
                }
                if replansFleet {
                    do {
                        let written = try work.replanner.catchUp()
                        if written > 0 { Log.info("re-planned the fleet for the newest model: \(written) configs") }
                    } catch {
                        Log.error("maintenance: fleet re-plan: \(error)")
                    }
                }
                if lastSweep.map({ monotonic.now - $0 >= .seconds(sweepEvery) }) ?? true {
                    waiters.wake(device: nil)
                    lastSweep = monotonic.now
                }
                Thread.sleep(forTimeInterval: tick)
            }
            done.signal()
        }
        thread.name = "fleetadapt.maintenance"
        thread.start()
    }

    package func shutdown() {
        if !stop.set() { done.wait() }
        listener?.stop()
    }
}

/// A flag a background thread polls to know when to stop.
package final class StopFlag: Sendable {
    private let value = Mutex(false)
    package var isSet: Bool { value.withLock { $0 } }
    /// Sets the flag; returns whether it was already set.
    package func set() -> Bool { value.withLock { old in defer { old = true }; return old } }
}

