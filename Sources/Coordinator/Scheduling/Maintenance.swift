import Synchronization
import Foundation
import PostgresClient

/// Background work of every coordinator replica: rescue expired leases, bring the fleet's configs to a newly
/// published model, and turn NOTIFY on the jobs channel into long-poll wake-ups (with a periodic sweep, since
/// NOTIFY is only a hint).
final class Maintenance: Sendable {
    private let stop = StopFlag()
    private let done = DispatchSemaphore(value: 0)
    private let listener: PostgresListener?

    init(services: Services, configuration: PostgresConfiguration, replansFleet: Bool = true, tick: Double = 0.5, sweepEvery: Double = 2) {
        let waiters = services.waiters
        listener = try? PostgresListener(configuration: configuration, channels: [JobStore.channel], onNotification: { _, payload in
            waiters.wake(device: UUID(uuidString: payload))
        }, onReconnect: { waiters.wake(device: nil) })
        let stop = self.stop
        let done = self.done
        let thread = Thread {
            var lastSweep = Date.distantPast
            while !stop.isSet {
                do {
                    let now = services.clock.now()
                    for campaign in try services.jobs.rescueExpired(backoff: services.backoff, now: now) {
                        try services.scheduler.evaluate(campaign, now: now)
                    }
                } catch {
                    Log.error("maintenance: \(error)")
                }
                if replansFleet {
                    do {
                        let written = try services.replanner.catchUp()
                        if written > 0 { Log.info("re-planned the fleet for the newest model: \(written) configs") }
                    } catch {
                        Log.error("maintenance: fleet re-plan: \(error)")
                    }
                }
                if Date().timeIntervalSince(lastSweep) >= sweepEvery {
                    waiters.wake(device: nil)
                    lastSweep = Date()
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

