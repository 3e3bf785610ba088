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
    private let releases: ReleaseStore
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

    /// Told how long every re-plan took (`device`: one device; `fleet`: many at once), for the re-plan duration
    /// histogram on `/metrics`.
    package let observe: @Sendable (_ scope: String, _ seconds: Double) -> Void

    package init(devices: DeviceStore, models: ModelStore, jobs: JobStore, configs: ConfigStore, aggregator: AdapterAggregator, clock: WallClock,
                 observe: @escaping @Sendable (_ scope: String, _ seconds: Double) -> Void = { _, _ in }) {
        self.observe = observe
        self.pool = configs.pool
        releases = ReleaseStore(pool: configs.pool)
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

    /// The adapters a device runs: its own after a succeeded `adapt`, the domain's newest aggregate after `apply`,
    /// only ever of a domain of the model the device is planned with (`models`: device → model).
    private func adapters(for models: [UUID: UUID], on c: PostgresConnection) throws -> [UUID: AdapterChoice] {
        let last = try jobs.lastAdaptations(models, on: c)
        let applied = Set(last.values.filter { $0.kind == .apply }.map(\.domain))
        let versions = try aggregator.latestVersions(Array(applied), on: c)
        return last.mapValues { a in
            a.kind == .apply ? AdapterChoice(domainID: a.domain, source: .aggregated, version: versions[a.domain])
                             : AdapterChoice(domainID: a.domain, source: .local, version: nil)
        }
    }

    private func adapters(for models: [UUID: UUID]) throws -> [UUID: AdapterChoice] {
        try pool.withConnection { try adapters(for: models, on: $0) }
    }

    /// The model a device that has no config yet is planned with: that of the newest release in force whose
    /// selector matches it; else the one plannable model when exactly one exists (a new fleet's first publish plans
    /// everyone). With several and no release for it, the device stays without a config until a release names a
    /// model for it (`POST /v1/releases`), since choosing among models is the operator's decision.
    package func bootstrapModel(device: UUID) throws -> UUID? {
        if let released = try releases.model(forUnconfigured: device), plannableCache(released) != nil { return released }
        return try soleModel()
    }

    /// The one plannable model, when exactly one exists.
    package func soleModel() throws -> UUID? {
        var plannable: [UUID] = []
        for id in try models.plannableCandidateIDs(limit: Self.candidateCount) where !unplannable.withLock({ $0.contains(id) }) {
            do {
                if try cache(model: id) != nil { plannable.append(id) }
            } catch let error as UnplannableModel {
                if unplannable.withLock({ $0.insert(id).inserted }) {
                    Log.error("\(error); it is skipped: deprecate it (POST /v1/models/\(id.uuidString.lowercased())/deprecate) or delete it")
                }
            }
            if plannable.count > 1 { return nil }
        }
        return plannable.first
    }

    /// The cache of `model`, or nil (logged once) when it cannot be planned with.
    private func plannableCache(_ model: UUID) -> FrontierCache? {
        do { return try cache(model: model) } catch {
            if unplannable.withLock({ $0.insert(model).inserted }) { Log.error("\(error); devices planned with it keep their configs") }
            return nil
        }
    }

    /// A locked re-plan loses only to a fleet write that took its version number; it then starts over with fresh
    /// inputs. Fleet writes are rare (publishes, adapter fan-outs), so a few attempts always suffice in practice.
    package static let maxAttempts = 4

    /// Re-plans one device and records the config if it changed. Errors are logged, never thrown: a re-plan must
    /// not fail the request that triggered it (the next trigger, or a fleet re-plan, catches up).
    /// The device keeps the model of its current config; `model` moves it to another (a release). A device without
    /// a config is planned with `bootstrapModel`, or stays without one.
    @discardableResult
    package func replan(device id: UUID, trigger: String, to model: UUID? = nil) -> DeviceConfigView? {
        let start = ContinuousClock.now
        defer { observe("device", Self.seconds(since: start)) }
        return replanSettling(id, trigger: trigger, to: model)?.config
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// The device's config after a locked re-plan, and whether this re-plan wrote it; nil when it has none or the
    /// re-plan failed (logged).
    private func replanSettling(_ id: UUID, trigger: String, to model: UUID? = nil) -> (config: DeviceConfigView?, created: Bool)? {
        do {
            for _ in 0..<Self.maxAttempts {
                if case .settled(let config, let created) = try replanLocked(id, trigger: trigger, to: model) { return (config, created) }
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
    /// The model is chosen before the lock (its cache may need a read of its own): the current config's model, unless
    /// `forced` names another; a config of another model written meanwhile sends the re-plan round again.
    private func replanLocked(_ id: UUID, trigger: String, to forced: UUID?) throws -> LockedOutcome {
        let seen = try configs.current(id)
        guard let model = try forced ?? seen?.decision.modelID ?? bootstrapModel(device: id) else { return .settled(seen, created: false) }
        guard let cache = plannableCache(model) else { return .settled(seen, created: false) }
        return try configs.withPlanningLock(id) { c in
            guard let device = try devices.find(id, on: c), device.status == .active else { return .settled(nil, created: false) }
            if forced == nil, try configs.current(id, on: c)?.decision.modelID != seen?.decision.modelID { return .lostRace }
            let previous = try configs.current(id, on: c)
            let decision = try decide(device, model: model, cache: cache, measured: try models.measuredLatencies(model: model, device: id, on: c),
                                      previous: previous, on: c)
            switch try configs.append(id, after: previous, decision: decision, trigger: trigger, now: clock.now(), on: c) {
            case .created(let config): return .settled(config, created: true)
            case .unchanged(let config): return .settled(config, created: false)
            case .lostRace: return .lostRace
            }
        }
    }

    /// The decision for `device` on `model` with these measured latencies (`nil`: the reference figures), after
    /// `previous`: what a re-plan writes and a release preview shows, from the same inputs.
    private func decide(_ device: Device, model: UUID, cache: FrontierCache, measured: [[Double]]?, previous: DeviceConfigView?,
                        on c: PostgresConnection) throws -> PlanDecision {
        let profile = Self.profile(hardware: device.hardware, constraints: device.constraints, context: device.context?.context,
                                   measured: measured, space: cache.reference.space)
        // GADS: a device that was split is searched from its previous cut outwards.
        let previousSplit = previous?.decision.modelID == model ? previous?.decision.partition?.splitAfterBlock : nil
        let plan = try cache.frontier(forDevice: device.id.uuidString, profile).plan(for: profile, previousSplit: previousSplit)
        return try Self.decision(plan, model: model, space: cache.reference.space, adapters: try adapters(for: [device.id: model], on: c)[device.id],
                                 measured: profile.measuredLatencyMs != nil)
    }

    /// The config a release's job would move `device` to once it reported `measured` (its profile of `model`):
    /// planned as the release's follow-up re-plans it, from the same inputs, and written nowhere. The agent
    /// measures that combination's served entropy and latency for the release gate.
    /// - Throws: `PlanInputError` naming `variant_latencies_ms` when the figures do not fit the model's blocks.
    package func preview(device id: UUID, model: UUID, measured: [[Double]]) throws -> PlanDecision? {
        guard let cache = try cache(model: model) else { return nil }
        let space = cache.reference.space
        guard measured.count == space.blocks.count, zip(measured, space.blocks).allSatisfy({ $0.count == $1.variants.count }) else {
            throw PlanInputError(field: "variant_latencies_ms", message: "must list one latency per variant of each of the model's \(space.blocks.count) blocks ("
                                 + space.blocks.map { String($0.variants.count) }.joined(separator: ", ") + " variants)")
        }
        return try pool.withConnection { c in
            guard let device = try devices.find(id, on: c), device.status == .active else { return nil }
            return try decide(device, model: model, cache: cache, measured: measured, previous: try configs.current(id, on: c), on: c)
        }
    }

    /// What `POST /v1/agent/jobs/{id}/plan` answers a device.
    package enum ReleasePreview: Equatable {
        case decision(PlanDecision)
        /// No job of this device with that id.
        case notFound
        /// The device's job, but not a release's `profile` job: it moves no model.
        case notARelease
        /// That attempt does not hold the job now.
        case notHeld
        /// The release's model cannot be planned with, or the device is no longer active.
        case unplannable
    }

    /// The preview of the release job `job` that `device`'s attempt `attempt` holds (`preview`).
    /// - Throws: `PlanInputError` when `measured` does not fit the release's model.
    package func releasePreview(job: UUID, device: UUID, attempt: Int, measured: [[Double]]) throws -> ReleasePreview {
        switch try releases.hold(job: job, device: device, attempt: attempt) {
        case .notFound: return .notFound
        case .notARelease: return .notARelease
        case .notHeld: return .notHeld
        case .held(let model):
            do { return try preview(device: device, model: model, measured: measured).map(ReleasePreview.decision) ?? .unplannable } catch is UnplannableModel {
                return .unplannable
            }
        }
    }

    /// The plannable models and releases `catchUp` last planned the unconfigured devices with (per process).
    private let caughtUp = Mutex<String?>(nil)
    package static let catchUpBatch = 10_000

    /// Plans the devices that have no config yet, from the maintenance loop rather than inside a request: with the
    /// one plannable model (`bootstrapModel`) once it exists. Devices that have a config are not touched: publishing
    /// or deprecating a model moves no device; a release does. Each replica does this once per set of plannable
    /// models it sees, at start-up too, so a publish whose replica died mid-way is finished by the next one. Returns
    /// the versions written.
    @discardableResult
    package func catchUp() throws -> Int {
        let key = try models.plannableCandidateIDs(limit: Self.candidateCount).map(\.uuidString).joined(separator: ",")
            + "|" + releases.fingerprint()
        guard caughtUp.withLock({ $0 }) != key else { return 0 }
        var written = 0, after: UUID?
        while true {
            let batch = try configs.devicesWithoutAnyConfig(after: after, limit: Self.catchUpBatch)
            guard let last = batch.last else { break }
            written += try replan(devices: batch, trigger: "model_published").changed
            after = last
        }
        caughtUp.withLock { $0 = key }
        return written
    }

    /// Re-plans every active device, each with the model of its config (devices without one: `bootstrapModel`).
    /// Returns (devices planned, versions written).
    @discardableResult
    package func replanAll(trigger: String) throws -> (planned: Int, changed: Int) {
        try replan(devices: nil, trigger: trigger)
    }

    /// Re-plans many devices at once (`nil`: every active device): one read of the devices, planning on every
    /// core, one bulk write of the configs that changed. Each device keeps the model of its current config unless
    /// `model` moves them all to it (a release wave). A device re-planned by someone else between the read and
    /// the write keeps that config unless a locked re-plan, with fresh inputs, decides otherwise. Returns
    /// (devices planned, versions written).
    @discardableResult
    package func replan(devices ids: [UUID]?, trigger: String, to model: UUID? = nil) throws -> (planned: Int, changed: Int) {
        if let ids, ids.isEmpty { return (0, 0) }
        let start = ContinuousClock.now
        defer { observe("fleet", Self.seconds(since: start)) }
        let all = try devices.allActive(ids: ids)
        let currentModels = model == nil ? try configs.currentModels(all.map(\.id)) : [:]
        let sole = model == nil && all.contains(where: { currentModels[$0.id] == nil }) ? try soleModel() : nil
        var targets: [UUID: UUID] = [:]
        var plannable: [UUID: FrontierCache] = [:]
        for device in all {
            // A device without a config: a release's model for it, else the sole model (one query each; such
            // devices are few, the newly registered).
            let unconfigured = model == nil && currentModels[device.id] == nil
            let released = unconfigured ? try releases.model(forUnconfigured: device.id) : nil
            guard let m = model ?? currentModels[device.id] ?? released ?? sole else { continue }
            if plannable[m] == nil, let cache = plannableCache(m) { plannable[m] = cache }
            if plannable[m] != nil { targets[device.id] = m }
        }
        let fleet = all.filter { targets[$0.id] != nil }
        let fleetIDs = fleet.map(\.id)
        var measured: [UUID: [[Double]]] = [:]
        for m in plannable.keys {
            let group = fleetIDs.filter { targets[$0] == m }
            measured.merge(try models.measuredLatencies(model: m, devices: group)) { a, _ in a }
        }
        let adapters = try adapters(for: targets)
        let current = try configs.currentIdentities(fleetIDs)
        let (targetOf, caches, measuredOf) = (targets, plannable, measured)
        // Plan, compare (by identity, no decoding) and encode on every core; only changed decisions are written.
        let decisions = Mutex([(device: UUID, expected: Int, decisionJSON: String)]())
        // A device that cannot be planned (a profile too extreme for the estimates) keeps its config; logged below.
        let failures = Mutex((count: 0, first: ""))
        let chunk = 512
        DispatchQueue.concurrentPerform(iterations: (fleet.count + chunk - 1) / chunk) { c in
            var local: [(device: UUID, expected: Int, decisionJSON: String)] = []
            var failed = 0, first = ""
            for device in fleet[(c * chunk)..<min(fleet.count, (c + 1) * chunk)] {
                let model = targetOf[device.id]!, cache = caches[model]!, space = cache.reference.space
                let profile = Self.profile(hardware: device.hardware, constraints: device.constraints, context: device.context?.context,
                                           measured: measuredOf[device.id], space: space)
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
            if replanSettling(item.device, trigger: trigger, to: model)?.created == true { created += 1 }
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
