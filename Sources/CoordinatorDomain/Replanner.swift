import CoordinatorStore
import Dispatch
import FleetAPI
import Foundation
import Planner
import PostgresClient
import Synchronization

/// Turns devices into configs: builds each device's planning profile from what the coordinator knows (hardware,
/// budgets, last context, its own measured latencies, the adapters it runs), asks the planner, and records a
/// new config version when the decision changed.
///
/// Planning spaces are immutable per model, so each model's frontier cache is built once and reused; a re-plan
/// after a context change is then a frontier lookup (microseconds) plus the database round trips.
package final class Replanner: Sendable {
    private let devices: DeviceStore
    private let models: ModelStore
    private let jobs: JobStore
    private let configs: ConfigStore
    private let aggregator: AdapterAggregator
    private let clock: WallClock
    private let pool: PostgresPool
    private let caches = Mutex(ModelCaches())

    /// Frontier caches of the models planned against most recently. Each may hold a frontier per measured device,
    /// so caches of superseded models are dropped instead of kept for the life of the process.
    private struct ModelCaches {
        package static let capacity = 4
        package var byModel: [UUID: FrontierCache] = [:]
        /// Least recently used first.
        package var order: [UUID] = []

        package mutating func touch(_ model: UUID) {
            if let i = order.firstIndex(of: model) { order.remove(at: i) }
            order.append(model)
        }

        package mutating func get(_ model: UUID) -> FrontierCache? {
            guard let hit = byModel[model] else { return nil }
            touch(model)
            return hit
        }

        package mutating func insert(_ model: UUID, _ cache: FrontierCache) -> FrontierCache {
            if let raced = get(model) { return raced }
            byModel[model] = cache
            touch(model)
            while order.count > Self.capacity { byModel[order.removeFirst()] = nil }
            return cache
        }
    }

    package init(devices: DeviceStore, models: ModelStore, jobs: JobStore, configs: ConfigStore, aggregator: AdapterAggregator, clock: WallClock) {
        self.pool = configs.pool
        self.devices = devices
        self.models = models
        self.jobs = jobs
        self.configs = configs
        self.aggregator = aggregator
        self.clock = clock
    }

    /// A model whose stored planning space the planner refuses (stored before the upload range checks, or edited
    /// in the database). Spaces are immutable, so this never changes for that model.
    package struct UnplannableModel: Error, CustomStringConvertible {
        package let id: UUID
        package let reason: String
        package var description: String { "model \(id.uuidString.lowercased()) cannot be planned with: \(reason)" }
    }

    /// Models found unplannable in this process: reported once, then skipped.
    private let unplannable = Mutex<Set<UUID>>([])
    /// How many of the newest models `currentModel` looks through for one it can plan with.
    package static let candidateCount = 8

    /// The frontier cache of a model, built from its stored planning space the first time it is needed.
    /// - Throws: `UnplannableModel` when the stored space does not decode or the planner refuses it.
    package func cache(model: UUID, spaceJSON: String? = nil) throws -> FrontierCache? {
        if let hit = caches.withLock({ $0.get(model) }) { return hit }
        guard let json = try spaceJSON ?? models.planningSpace(model) else { return nil }
        let cache: FrontierCache
        do { cache = try FrontierCache(space: try WireJSON.decode(PlanningSpace.self, from: json)) } catch {
            throw UnplannableModel(id: model, reason: "\(error)")
        }
        return caches.withLock { $0.insert(model, cache) }
    }

    /// The newest model that is not deprecated and can be planned with, and its cache. A model the planner refuses
    /// is logged once and passed over for the next newest, so one bad row cannot stop every re-plan (nor kill the
    /// process); the operator deprecates or deletes it.
    package func currentModel() throws -> (id: UUID, cache: FrontierCache)? {
        for id in try models.plannableCandidateIDs(limit: Self.candidateCount) where !unplannable.withLock({ $0.contains(id) }) {
            do {
                if let cache = try cache(model: id) { return (id, cache) }
            } catch let error as UnplannableModel {
                if unplannable.withLock({ $0.insert(id).inserted }) {
                    Log.error("\(error); it is skipped (the next newest model is planned with): deprecate it (POST /v1/models/\(id.uuidString.lowercased())/deprecate) or delete it")
                }
            }
        }
        return nil
    }

    /// The planner's profile of a device. Rules (README, "Configs"): memory budget = the least of the budget, the
    /// device's memory and its reported free memory; an edge link exists when the context names an edge server
    /// and reports bandwidth (RTT 0 and `DeviceContext.defaultEdgeServerGFLOPS` when not reported); measured
    /// latencies are used only when they fit the model's space.
    package static func profile(hardware: Hardware, constraints: Constraints, context: DeviceContext?, measured: [[Double]]?,
                        space: PlanningSpace) -> DeviceProfile {
        var memory = min(constraints.memoryBudgetMB, Double(hardware.memoryMB))
        if let free = context?.freeMemoryMB { memory = min(memory, free) }
        var edge: EdgeLink?
        // Below 1 kbit/s a link carries no tensor in any useful time (and its transfer time would overflow).
        if let ctx = context, ctx.edgeServer != nil, let bandwidth = ctx.bandwidthMbps, bandwidth >= 0.001 {
            edge = EdgeLink(bandwidthMbps: bandwidth, rttMs: ctx.rttMs ?? 0,
                            serverGFLOPS: ctx.edgeServerGFLOPS ?? DeviceContext.defaultEdgeServerGFLOPS)
        }
        let fits = measured.map { m in m.count == space.blocks.count && zip(m, space.blocks).allSatisfy { $0.count == $1.variants.count } } ?? false
        return DeviceProfile(gflops: hardware.gflops, hardwareClass: hardware.class, latencyBudgetMs: constraints.latencyBudgetMs,
                             memoryBudgetMB: memory, energyBudgetMJ: constraints.energyBudgetMJ, batteryPct: context?.batteryPct,
                             measuredLatencyMs: fits ? measured : nil, edge: edge)
    }

    package static func decision(_ plan: Plan, model: UUID, space: PlanningSpace, adapters: AdapterChoice?, measured: Bool) throws -> PlanDecision {
        let p = plan.predicted
        guard [p.accuracy, p.latencyMs, p.memoryMB, p.energyMJ].allSatisfy(\.isFinite) else {
            throw PlanInputError(field: "hardware", message: "the profile's figures are too extreme to plan with (an estimate overflows)")
        }
        return PlanDecision(
            modelID: model,
            variants: zip(space.blocks, plan.variantIDs).map { VariantChoice(block: $0.name, variant: $1) },
            partition: plan.partition.map { PartitionView(splitAfterBlock: $0.splitAfterBlock, deviceLatencyMs: $0.deviceLatencyMs,
                                                          edgeLatencyMs: $0.edgeLatencyMs, transferMs: $0.transferMs) },
            adapters: adapters,
            predicted: PredictedCost(accuracy: plan.predicted.accuracy, latencyMs: plan.predicted.latencyMs,
                                     memoryMB: plan.predicted.memoryMB, energyMJ: plan.predicted.energyMJ),
            bindingConstraint: plan.bindingConstraint?.rawValue, feasible: plan.feasible, reason: plan.reason,
            latencySource: measured ? "measured" : "reference")
    }

    /// The adapters a device runs: its own after a succeeded `adapt`, the domain's newest aggregate after `apply`.
    private func adapters(for ids: [UUID], on c: PostgresConnection) throws -> [UUID: AdapterChoice] {
        let last = try jobs.lastAdaptations(ids, on: c)
        let applied = Set(last.values.filter { $0.kind == .apply }.map(\.domain))
        let versions = try aggregator.latestVersions(Array(applied), on: c)
        return last.mapValues { a in
            a.kind == .apply ? AdapterChoice(domainID: a.domain, source: .aggregated, version: versions[a.domain])
                             : AdapterChoice(domainID: a.domain, source: .local, version: nil)
        }
    }

    private func adapters(for ids: [UUID]) throws -> [UUID: AdapterChoice] {
        try pool.withConnection { try adapters(for: ids, on: $0) }
    }

    /// A locked re-plan loses only to a fleet write that took its version number; it then starts over with fresh
    /// inputs. Fleet writes are rare (publishes, adapter fan-outs), so a few attempts always suffice in practice.
    package static let maxAttempts = 4

    /// Re-plans one device and records the config if it changed. Errors are logged, never thrown: a re-plan must
    /// not fail the request that triggered it (the next trigger, or a fleet re-plan, catches up).
    @discardableResult
    package func replan(device id: UUID, trigger: String) -> DeviceConfigView? {
        replanSettling(id, trigger: trigger)?.config
    }

    /// The device's config after a locked re-plan, and whether this re-plan wrote it; nil when it has none or the
    /// re-plan failed (logged).
    private func replanSettling(_ id: UUID, trigger: String) -> (config: DeviceConfigView?, created: Bool)? {
        do {
            for _ in 0..<Self.maxAttempts {
                if case .settled(let config, let created) = try replanLocked(id, trigger: trigger) { return (config, created) }
            }
            Log.error("re-plan of device \(id.uuidString.lowercased()) (\(trigger)) lost \(Self.maxAttempts) races with fleet re-plans; the next trigger catches up")
        } catch {
            Log.error("re-plan of device \(id.uuidString.lowercased()) (\(trigger)) failed: \(error)")
        }
        return nil
    }

    private enum LockedOutcome {
        case settled(DeviceConfigView?, created: Bool)
        case lostRace
    }

    /// Reads the device's inputs, plans and writes under the device's planning lock, so that concurrent triggers
    /// of one device (a context report, a PATCH, an adapter fan-out) cannot write an older reading over a newer one.
    /// The model is read before the lock: a publish re-plans the whole fleet afterwards, which settles any device
    /// planned against the previous model meanwhile.
    private func replanLocked(_ id: UUID, trigger: String) throws -> LockedOutcome {
        guard let (model, cache) = try currentModel() else { return .settled(nil, created: false) }
        return try configs.withPlanningLock(id) { c in
            guard let device = try devices.find(id, on: c), device.status == .active else { return .settled(nil, created: false) }
            let measured = try models.measuredLatencies(model: model, device: id, on: c)
            let profile = Self.profile(hardware: device.hardware, constraints: device.constraints, context: device.context?.context,
                                       measured: measured, space: cache.reference.space)
            // GADS: a device that was split is searched from its previous cut outwards.
            let previous = try configs.current(id, on: c)
            let previousSplit = previous?.decision.modelID == model ? previous?.decision.partition?.splitAfterBlock : nil
            let plan = try cache.frontier(forDevice: id.uuidString, profile).plan(for: profile, previousSplit: previousSplit)
            let decision = try Self.decision(plan, model: model, space: cache.reference.space, adapters: try adapters(for: [id], on: c)[id],
                                             measured: profile.measuredLatencyMs != nil)
            switch try configs.append(id, after: previous, decision: decision, trigger: trigger, now: clock.now(), on: c) {
            case .created(let config): return .settled(config, created: true)
            case .unchanged(let config): return .settled(config, created: false)
            case .lostRace: return .lostRace
            }
        }
    }

    /// The model the fleet was last brought up to date with by `catchUp` (per process).
    private let caughtUp = Mutex<UUID?>(nil)
    package static let catchUpBatch = 10_000

    /// Brings the fleet to the newest model it can plan with (`currentModel`) after a publish or a deprecation,
    /// from the maintenance loop rather than inside the request: devices whose current config is for another model
    /// are re-planned in batches of `catchUpBatch` (one read, planning on every core, one COPY each). Each replica
    /// does this once per current model it sees, at start-up too, so a publish whose replica died mid-way is
    /// finished by the next one. Returns the versions written.
    @discardableResult
    package func catchUp() throws -> Int {
        guard let latest = try currentModel()?.id, caughtUp.withLock({ $0 }) != latest else { return 0 }
        var written = 0, after: UUID?
        while true {
            let batch = try configs.devicesWithoutConfig(for: latest, after: after, limit: Self.catchUpBatch)
            guard let last = batch.last else { break }
            written += try replan(devices: batch, trigger: "model_published").changed
            after = last
        }
        caughtUp.withLock { $0 = latest }
        return written
    }

    /// Re-plans every active device against the newest model. Returns (devices planned, versions written).
    @discardableResult
    package func replanAll(trigger: String) throws -> (planned: Int, changed: Int) {
        try replan(devices: nil, trigger: trigger)
    }

    /// Re-plans many devices at once (`nil`: every active device): one read of the devices, planning on every
    /// core, one bulk write of the configs that changed. A device re-planned by someone else between the read and
    /// the write keeps that config unless a locked re-plan, with fresh inputs, decides otherwise. Returns
    /// (devices planned, versions written).
    @discardableResult
    package func replan(devices ids: [UUID]?, trigger: String) throws -> (planned: Int, changed: Int) {
        guard let (model, cache) = try currentModel() else { return (0, 0) }
        if let ids, ids.isEmpty { return (0, 0) }
        let fleet = try devices.allActive(ids: ids)
        let fleetIDs = fleet.map(\.id)
        let measured = try models.measuredLatencies(model: model, devices: fleetIDs)
        let adapters = try adapters(for: fleetIDs)
        let current = try configs.currentIdentities(fleetIDs)
        let space = cache.reference.space
        // Plan, compare (by identity, no decoding) and encode on every core; only changed decisions are written.
        let decisions = Mutex([(device: UUID, expected: Int, decisionJSON: String)]())
        // A device that cannot be planned (a profile too extreme for the estimates) keeps its config; logged below.
        let failures = Mutex((count: 0, first: ""))
        let chunk = 512
        DispatchQueue.concurrentPerform(iterations: (fleet.count + chunk - 1) / chunk) { c in
            var local: [(device: UUID, expected: Int, decisionJSON: String)] = []
            var failed = 0, first = ""
            for device in fleet[(c * chunk)..<min(fleet.count, (c + 1) * chunk)] {
                let profile = Self.profile(hardware: device.hardware, constraints: device.constraints, context: device.context?.context,
                                           measured: measured[device.id], space: space)
                do {
                    let plan = try cache.frontier(forDevice: device.id.uuidString, profile).plan(for: profile)
                    let d = try Self.decision(plan, model: model, space: space, adapters: adapters[device.id],
                                              measured: profile.measuredLatencyMs != nil)
                    let old = current[device.id]
                    if let old, old.identity == d.identity { continue }
                    local.append((device.id, old?.version ?? 0, try WireJSON.string(d)))
                } catch {
                    if failed == 0 { first = "device \(device.id.uuidString.lowercased()): \(error)" }
                    failed += 1
                }
            }
            decisions.withLock { $0 += local }
            if failed > 0 { failures.withLock { f in if f.count == 0 { f.first = first }; f.count += failed } }
        }
        let failed = failures.withLock { $0 }
        if failed.count > 0 {
            Log.error("fleet re-plan (\(trigger)): \(failed.count) devices could not be planned and keep their configs; first: \(failed.first)")
        }
        let changed = decisions.withLock { $0 }
        let written = try configs.recordMany(changed, trigger: trigger, now: clock.now())
        // Someone re-planned these after our read: their reading may be newer than ours (a context report) or older
        // (begun before this model was published). A locked re-plan reads afresh and settles it; they are few.
        var created = written.count
        for item in changed where !written.contains(item.device) {
            if replanSettling(item.device, trigger: trigger)?.created == true { created += 1 }
        }
        return (fleet.count, created)
    }

    /// What a device with this profile would get now; stores nothing.
    package func whatIf(_ request: PlanRequest) throws -> PlanDecision {
        let model: UUID
        let cache: FrontierCache
        if let id = request.modelID {
            let found: FrontierCache?
            do { found = try self.cache(model: id) } catch let error as UnplannableModel {
                throw PlanInputError(field: "model_id", message: "\(error) (deprecate or delete it)")
            }
            guard let c = found else {
                throw PlanInputError(field: "model_id", message: "no elastic model \(id.uuidString.lowercased()) (publish one with POST /v1/models)")
            }
            (model, cache) = (id, c)
        } else {
            guard let current = try currentModel() else { throw PlanInputError(field: "model_id", message: "no elastic model is published yet") }
            (model, cache) = current
        }
        let space = cache.reference.space
        if let m = request.measuredLatenciesMs,
           m.count != space.blocks.count || !zip(m, space.blocks).allSatisfy({ $0.count == $1.variants.count }) {
            throw PlanInputError(field: "measured_latencies_ms", message: "must have \(space.blocks.count) blocks of \(space.blocks.map { String($0.variants.count) }.joined(separator: "/")) variants")
        }
        let profile = Self.profile(hardware: request.hardware, constraints: request.constraints, context: request.context,
                                   measured: request.measuredLatenciesMs, space: space)
        // The shared reference frontier answers unless the request brings measurements (then a one-off DP that
        // is not cached: what-if profiles belong to no device).
        let frontier = profile.measuredLatencyMs == nil ? cache.reference : try PlanningFrontier(space: space, device: profile)
        let plan = try frontier.plan(for: profile)
        return try Self.decision(plan, model: model, space: space, adapters: nil, measured: profile.measuredLatencyMs != nil)
    }
}

/// A plan request the planner cannot serve, naming the request field at fault. Routes answer it as a 422
/// `validation_failed` problem (`HTTPError.planInput`), so planning stays free of HTTP.
package struct PlanInputError: Error, Equatable {
    package let field: String
    package let message: String
}
