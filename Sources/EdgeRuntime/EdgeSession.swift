import ElasticModel
import Foundation
import Learning
import Synchronization

/// One device's half of its split network on this edge server: the elastic network composed with the device's
/// configured variants, carrying the device's own adapters and batch norms for the blocks after the cut.
/// The suffix is an `InferenceGraph` (a Sendable value with its own parameters), so a device's requests run
/// concurrently without a lock, as different devices' do.
final class EdgeSession: Sendable {
    let deviceID: UUID
    let configVersion: Int
    let modelID: UUID
    let splitAfterBlock: Int
    /// (C, H, W) of the tensor the device sends.
    let cutShape: [Int]
    let classes: Int
    private let suffix: InferenceGraph
    /// When the coordinator last confirmed that the device behind this session still exists (monotonic clock).
    private let confirmedAt: Mutex<ContinuousClock.Instant>

    init(deviceID: UUID, configVersion: Int, modelID: UUID, splitAfterBlock: Int, network: ElasticNetwork,
         confirmedAt: ContinuousClock.Instant = .now) throws {
        self.deviceID = deviceID
        self.configVersion = configVersion
        self.modelID = modelID
        self.splitAfterBlock = splitAfterBlock
        cutShape = network.model.featureShape(after: splitAfterBlock)
        classes = network.model.head.outFeatures
        suffix = InferenceGraph(try network.model.graph(after: splitAfterBlock), store: network.model.store)
        self.confirmedAt = Mutex(confirmedAt)
    }

    /// Whether the coordinator's last confirmation is older than `ttl` at `now`, so the device must be checked again.
    func needsConfirmation(ttl: Duration, now: ContinuousClock.Instant) -> Bool {
        confirmedAt.withLock { now - $0 >= ttl }
    }

    func confirmed(at instant: ContinuousClock.Instant) {
        confirmedAt.withLock { $0 = max($0, instant) }
    }

    /// Runs the blocks after the cut and the head on the device's features.
    func infer(_ features: Tensor) -> Tensor {
        suffix.forward([features])[0]
    }
}

/// Sessions by the SHA-256 of the device token that opened them (tokens are never kept), at most `capacity`:
/// opening one more drops the least recently used.
final class EdgeSessions: Sendable {
    private struct State {
        var sessions: [String: EdgeSession] = [:]
        var lastUse: [String: UInt64] = [:]
        var clock: UInt64 = 0
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    func put(_ session: EdgeSession, key: String) {
        state.withLock { s in
            s.clock += 1
            s.sessions[key] = session
            s.lastUse[key] = s.clock
            while s.sessions.count > capacity, let oldest = s.lastUse.min(by: { $0.value < $1.value })?.key {
                s.sessions[oldest] = nil
                s.lastUse[oldest] = nil
            }
        }
    }

    func get(_ key: String) -> EdgeSession? {
        state.withLock { s in
            guard let session = s.sessions[key] else { return nil }
            s.clock += 1
            s.lastUse[key] = s.clock
            return session
        }
    }

    /// Drops the session under `key` if it is still `session` (a session opened since then stays).
    func remove(_ key: String, ifStill session: EdgeSession) {
        state.withLock { s in
            guard s.sessions[key] === session else { return }
            s.sessions[key] = nil
            s.lastUse[key] = nil
        }
    }

    var count: Int { state.withLock { $0.sessions.count } }
}
