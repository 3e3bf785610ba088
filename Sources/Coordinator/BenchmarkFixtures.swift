import CoordinatorStore
import FleetAPI
import Foundation
import Planner

/// Rows that the benchmarks of `fleetadapt bench` need in a coordinator's database and the API does not create in
/// bulk (a hundred thousand devices, a model without a package). Every write goes through the store that owns the
/// table, so the CLI holds no SQL.
public struct BenchmarkFixtures: Sendable {
    let stores: CoordinatorStores

    /// Publishes a placeholder model: a few bytes instead of a package, an empty manifest, and `planningSpace` when
    /// given (then the coordinator plans devices with it, as with a published package). Returns its id.
    public func insertModel(name: String, planningSpace: PlanningSpace? = nil) throws -> UUID {
        let id = UUID()
        let content = Array("benchmark model \(id.uuidString.lowercased())".utf8)
        let combinations = planningSpace.map { Int(min($0.combinationCount, 1e18)) } ?? 1
        _ = try stores.models.insert(id: id, name: name, sha256: Secrets.sha256(content), content: content, manifestJSON: "{}",
                                     planningSpaceJSON: try planningSpace.map(WireJSON.string), combinationCount: combinations, now: Date())
        return id
    }

    /// Inserts `count` active phones in one statement; device `i` (from 1) is named `"\(prefix)\(i)"` and that is also
    /// its bearer token.
    public func insertDevices(count: Int, tokenPrefix prefix: String, labels: [String: String]) throws {
        try stores.devices.insertUniformFleet(count: count, prefix: prefix, labels: labels)
    }

    /// Inserts `count` active devices with varied hardware, budgets, batteries and edge links in one statement.
    public func insertVariedDevices(count: Int) throws {
        try stores.devices.insertVariedFleet(count: count)
    }

    /// The device that `token` authenticates, if it is active.
    public func deviceID(token: String) throws -> UUID? {
        if case .active(let id) = try stores.devices.authenticate(tokenDigest: Secrets.sha256(token), now: Date()) { return id }
        return nil
    }

    /// Cancels a device's queued jobs, so its next campaign's job is the one it leases.
    public func cancelQueuedJobs(device: UUID) throws {
        try stores.jobs.cancelQueued(device: device)
    }

    /// Jobs in state `leased` now.
    public func leasedJobCount() throws -> Int {
        try stores.jobs.countsByState()[JobState.leased.rawValue] ?? 0
    }

    /// The duration of a raw COPY of every job's (id, device, document) into a scratch table: the bare write a
    /// campaign's fan-out does, without planning, HTTP or JSON (`JobStore.copyBaseline`).
    public func rawCopyOfJobs() throws -> Duration {
        try stores.jobs.copyBaseline()
    }
}
