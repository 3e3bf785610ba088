import Synchronization
import Foundation
import PostgresClient

/// Background work of every coordinator replica: rescue expired leases, wake the devices whose retry became ready,
/// finish the follow-ups of successes whose result request did not, re-evaluate every running campaign
/// periodically, bring the fleet's configs to a newly published model, and turn NOTIFY on the jobs channel into
/// long-poll wake-ups (with a periodic sweep, since NOTIFY is only a hint). A step that fails logs; the loop goes on.
final class Maintenance: Sendable {
    private let stop = StopFlag()
    private let done = DispatchSemaphore(value: 0)
    private let listener: PostgresListener?

    /// - Parameters:
    ///   - evaluateEvery: seconds between re-evaluations of every running campaign (a campaign whose evaluation
    ///     failed after a result, or whose jobs ended without a request, still advances).
    ///   - followupGrace: seconds a success's follow-ups are left to the result request before this loop takes them.
    init(services: Services, configuration: PostgresConfiguration, replansFleet: Bool = true, tick: Double = 0.5, sweepEvery: Double = 2,
         evaluateEvery: Double = 5, followupGrace: Double = 2) {
        let waiters = services.waiters
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
            var readySince: Date?
            while !stop.isSet {
                var touched = Set<UUID>()
                do {
                    touched.formUnion(try services.jobs.rescueExpired(backoff: services.backoff))
                } catch {
                    Log.error("maintenance: lease rescue: \(error)")
                }
                do { readySince = try services.jobs.notifyBecameReady(since: readySince) } catch {
                    Log.error("maintenance: ready-job wake-ups: \(error)")
                }
                do {
                    let followups = JobFollowups(services: services)
                    for pending in try services.jobs.pendingFollowups(graceSeconds: followupGrace) {
                        do {
                            if try followups.finish(job: pending.job, wait: false) == .finished { touched.insert(pending.campaign) }
                        } catch {
                            Log.error("maintenance: follow-ups of job \(pending.job.uuidString.lowercased()): \(error)")
                        }
                    }
                } catch {
                    Log.error("maintenance: pending follow-ups: \(error)")
                }
                if lastEvaluation.map({ monotonic.now - $0 >= .seconds(evaluateEvery) }) ?? true {
                    lastEvaluation = monotonic.now
                    do { touched.formUnion(try services.campaigns.runningCampaigns()) } catch {
                        Log.error("maintenance: running campaigns: \(error)")
                    }
                }
                for campaign in touched.sorted(by: { $0.uuidString < $1.uuidString }) {
                    do { try services.scheduler.evaluate(campaign, now: services.clock.now()) } catch {
                        Log.error("maintenance: evaluation of campaign \(campaign.uuidString.lowercased()): \(error)")
                    }
                }
                if replansFleet {
                    do {
                        let written = try services.replanner.catchUp()
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

    func shutdown() {
        if !stop.set() { done.wait() }
        listener?.stop()
    }
}

/// A flag a background thread polls to know when to stop.
final class StopFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    /// Sets the flag; returns whether it was already set.
    func set() -> Bool { value.withLock { old in defer { old = true }; return old } }
}

