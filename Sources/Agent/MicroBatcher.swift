import Dispatch
import Foundation
import Learning
import Synchronization

/// Bounded micro-batching of single-input predictions (`--serve-batch-window-ms`, off by default): a request that
/// finds no batch forming starts one and waits at most the window (less when `maxBatch` requests have joined);
/// requests arriving meanwhile on the same served network join it, and one forward answers them all. Each request
/// waits at most one window plus the batch's forward, a batch never mixes two networks (a swap starts a new one),
/// and every answer is the row of its own input. With concurrent clients it trades up to one window of latency
/// for fewer, larger forwards; a lone client only pays the window.
final class MicroBatcher: Sendable {
    /// One request waiting in the queue: its input, the network it read, and where its answer goes. `outcome` is
    /// written by the batch's leader before `done` is signalled; a signal without an outcome makes it the next leader.
    final class Slot: Sendable {
        let x: Tensor
        let network: ServedNetwork
        let done = DispatchSemaphore(value: 0)
        let outcome = Shared<InferenceService.Outcome?>(nil)

        init(x: Tensor, network: ServedNetwork) {
            self.x = x
            self.network = network
        }
    }

    private struct Queue {
        var waiting: [Slot] = []
        var leading = false
    }

    let window: Duration
    let maxBatch: Int
    private let queue = Mutex(Queue())
    /// Signalled when the queue reaches `maxBatch`, so the leader does not wait out the window.
    private let full = DispatchSemaphore(value: 0)

    init(windowMs: Double, maxBatch: Int) {
        window = .microseconds(Int(windowMs * 1000))
        self.maxBatch = max(1, maxBatch)
    }

    /// Answers `x` (1, C, H, W) on `network`, in a batch with whatever joins within the window; `forward` runs a batch.
    func run(_ x: Tensor, on network: ServedNetwork, forward: (Tensor, ServedNetwork) -> InferenceService.Outcome,
             counted: (Int) -> Void) -> InferenceService.Outcome {
        let slot = Slot(x: x, network: network)
        let maxBatch = maxBatch
        let lead = queue.withLock { q -> Bool in
            q.waiting.append(slot)
            if q.waiting.count == maxBatch { full.signal() }
            if q.leading { return false }
            q.leading = true
            return true
        }
        if !lead {
            slot.done.wait()
            if let outcome = slot.outcome.value { return outcome }
            // Promoted: the previous leader left this slot first in the queue.
        }
        let microseconds = Int(window.components.seconds) * 1_000_000 + Int(window.components.attoseconds / 1_000_000_000_000)
        _ = full.wait(timeout: .now() + .microseconds(microseconds))
        let batch = queue.withLock { q -> [Slot] in
            var taken: [Slot] = [], kept: [Slot] = []
            for s in q.waiting {
                if taken.count < maxBatch && s.network === slot.network { taken.append(s) } else { kept.append(s) }
            }
            q.waiting = kept
            return taken
        }
        let rows = batch.count
        let width = x.data.count
        var data: [Float] = []
        data.reserveCapacity(rows * width)
        for s in batch { data.append(contentsOf: s.x.data) }
        let outcome = forward(Tensor(shape: [rows] + Array(x.shape.dropFirst()), data: data), slot.network)
        counted(rows)
        let classes = outcome.logits.shape.count == 2 ? outcome.logits.shape[1] : 0
        for (i, s) in batch.enumerated() {
            var mine = outcome
            mine.logits = Tensor(shape: [1, classes], data: Array(outcome.logits.data[(i * classes)..<((i + 1) * classes)]))
            s.outcome.set(mine)
            if s !== slot { s.done.signal() }
        }
        queue.withLock { q in
            if let next = q.waiting.first { next.done.signal() } else { q.leading = false }
        }
        return slot.outcome.value!
    }
}
