import CoordinatorStore
import FleetAPI
import Foundation
import Synchronization

/// A parked long-poll as the scheduler sees it; the route adapts its HTTP one (and renders the answers).
package protocol JobWaiter: Sendable {
    /// Already answered (by a job, a timeout or a closed connection).
    var isCompleted: Bool { get }
    /// The client closed its connection: no job may be handed to it.
    var clientHasGone: Bool { get }
    /// Answers "no job now".
    func completeEmpty()
    /// Answers with a leased job; false when the poll was already answered. `ifUndelivered` runs when the answer
    /// did not reach the client whole, so the lease can be given back.
    func complete(with job: LeasedJob, ifUndelivered: @escaping @Sendable () -> Void) -> Bool
}

/// Agents waiting in `GET /v1/agent/jobs/next?wait=…`, by device. A NOTIFY (or the periodic fallback sweep,
/// since NOTIFY is only a hint) makes each affected waiter try to lease; a leased job completes its long-poll.
package final class JobWaiters: Sendable {
    private let waiting = Mutex<[UUID: [any JobWaiter]]>([:])
    private let queue = DispatchQueue(label: "fleetadapt.job-waiters", attributes: .concurrent)
    private let jobs: JobStore

    package init(jobs: JobStore) {
        self.jobs = jobs
    }

    package func add(device: UUID, poll: any JobWaiter) {
        waiting.withLock { $0[device, default: []].append(poll) }
    }

    package var count: Int { waiting.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Wakes the waiters of one device, or of every device when `device` is nil.
    package func wake(device: UUID?) {
        let targets: [(UUID, [any JobWaiter])] = waiting.withLock { table in
            for (key, polls) in table {
                let open = polls.filter { !$0.isCompleted }
                if open.isEmpty { table[key] = nil } else { table[key] = open }
            }
            if let device { return table[device].map { [(device, $0)] } ?? [] }
            return Array(table)
        }
        for (device, polls) in targets {
            queue.async { [self] in self.tryLease(device: device, polls: polls) }
        }
    }

    /// Leases for the first waiter whose client is still there. A waiter whose client has closed its connection
    /// (a restarted agent, a proxy's idle timeout) is answered and skipped, so no job is leased to nobody; if the
    /// answer carrying a job still fails to reach the client, the lease is given back.
    private func tryLease(device: UUID, polls: [any JobWaiter]) {
        for poll in polls where !poll.isCompleted {
            if poll.clientHasGone {
                poll.completeEmpty()
                continue
            }
            do {
                guard let job = try jobs.leaseNext(device: device) else { return }
                let jobs = self.jobs
                let giveBack: @Sendable () -> Void = {
                    do { try jobs.unlease(job: job.id, attempt: job.attempt) } catch {
                        Log.error("giving back job \(job.id.uuidString.lowercased()) after an undelivered long-poll: \(error)")
                    }
                }
                if !poll.complete(with: job, ifUndelivered: giveBack) {
                    // The poll timed out meanwhile: give the lease back so the next poll gets the job at once.
                    giveBack()
                }
                return
            } catch {
                Log.error("long-poll lease for device \(device): \(error)")
                return
            }
        }
    }
}
