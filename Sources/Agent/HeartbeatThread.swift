import FleetClient
import Foundation

/// The heartbeats of one job: a thread that renews the lease every `interval` seconds, sending the job's latest
/// progress, from when it is made until `stop()`. A heartbeat that fails (the coordinator is away) is not
/// retried: the next one comes an interval later. One answered "lost" (404/409) ends the heartbeats and marks the
/// lease lost.
final class HeartbeatThread: Sendable {
    /// Set when the coordinator said this attempt no longer holds the job.
    let leaseLost = Shared(false)
    private let running = Shared(true)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts beating: `beat` sends one heartbeat and returns the coordinator's answer (nil when none came).
    init(interval: Double, beat: @escaping @Sendable () -> CoordinatorClient.HeartbeatAnswer?) {
        Thread { [self] in
            defer { finished.signal() }
            while running.value {
                // Sleeps the interval, or less when stopped meanwhile.
                if wake.wait(timeout: .now() + interval) == .success { break }
                guard running.value else { break }
                if case .lost? = beat() {
                    leaseLost.set(true)
                    break
                }
            }
        }.start()
    }

    /// Ends the heartbeats. It waits (a bounded time) for one in flight, so that a job's heartbeats end before the
    /// next job is leased; a coordinator that holds the request longer is not waited for.
    func stop() {
        guard running.update({ let was = $0; $0 = false; return was }) else { return }
        wake.signal()
        _ = finished.wait(timeout: .now() + 10)
    }
}
