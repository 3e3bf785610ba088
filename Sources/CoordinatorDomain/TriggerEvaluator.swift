import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient

/// Turns drift into campaigns without an operator: for each enabled trigger, counts the active devices its selector
/// matches whose fresh drift report is beyond its threshold; when its condition has held for `for_s`, creates a
/// domain and its campaign over those devices through `CampaignLaunch` (the use case `POST /v1/domains` runs), at
/// most once per cooldown. Every replica evaluates (from its maintenance loop and after a device turns drifting);
/// `TriggerStore.claimFiring` inside the creating transaction makes one of them fire.
package struct TriggerEvaluator: Sendable {
    package let pool: PostgresPool
    package let triggers: TriggerStore
    package let drift: DriftStore
    package let configs: ConfigStore
    package let launch: CampaignLaunch
    package let clock: WallClock

    package init(stores: CoordinatorStores, launch: CampaignLaunch, clock: WallClock) {
        pool = stores.pool
        triggers = stores.triggers
        drift = stores.drift
        configs = stores.configs
        self.launch = launch
        self.clock = clock
    }

    package enum Outcome: Sendable, Equatable {
        /// The condition does not hold.
        case idle
        /// It holds (since then), but not yet for `for_s`, or the cooldown has not passed, or another replica fired.
        case holding(since: Date)
        case fired(DomainCreated)
        /// It should fire but the domain cannot be made (why); nothing was written and it is tried again.
        case refused(String)
    }

    /// Evaluates every enabled trigger now; failures are logged per trigger. Returns what fired.
    @discardableResult
    package func evaluateAll() -> [DomainCreated] {
        let list: [TriggerView]
        do { list = try triggers.enabled() } catch {
            Log.error("triggers: listing: \(error)")
            return []
        }
        var fired: [DomainCreated] = []
        for trigger in list {
            do {
                switch try evaluate(trigger, now: clock.now()) {
                case .fired(let created): fired.append(created)
                case .refused(let why): Log.warning("trigger \(trigger.id.uuidString.lowercased()) (\(trigger.spec.name)) cannot fire: \(why)")
                case .idle, .holding: break
                }
            } catch {
                Log.error("triggers: evaluation of \(trigger.id.uuidString.lowercased()): \(error)")
            }
        }
        return fired
    }

    package func evaluate(_ trigger: TriggerView, now: Date) throws -> Outcome {
        let spec = trigger.spec
        guard let metric = spec.condition.knownMetric else { return .refused("unknown metric \(spec.condition.metric)") }
        let (matching, beyond) = try drift.beyond(labels: spec.selector.labels, ids: spec.selector.deviceIDs, metric: metric,
                                                  threshold: spec.condition.threshold, freshSince: now.addingTimeInterval(-DriftStore.freshSeconds))
        let holds = spec.condition.holds(matching: matching, beyond: beyond.count)
        guard let since = try triggers.markCondition(trigger.id, holds: holds, now: now) else { return .idle }
        guard now.timeIntervalSince(since) >= Double(spec.condition.effectiveForS) else { return .holding(since: since) }
        if let last = trigger.lastFiredAt, now.timeIntervalSince(last) < Double(spec.effectiveCooldownS) { return .holding(since: since) }
        let model: UUID
        if let chosen = spec.domainTemplate.modelID {
            model = chosen
        } else {
            // The model most of the drifting devices run (ties: the smallest id, so every replica picks the same).
            let counts = Dictionary(try configs.currentModels(beyond).values.map { ($0, 1) }, uniquingKeysWith: +)
            guard let most = counts.sorted(by: { ($0.value, $1.key.uuidString) > ($1.value, $0.key.uuidString) }).first?.key else {
                return .refused("none of the drifting devices has a config, and domain_template names no model_id")
            }
            model = most
        }
        let stamp = ISO8601DateFormatter().string(from: now)
        let request = spec.domain(model: model, devices: beyond, name: "\(spec.name) \(stamp)",
                                  description: "Created by trigger \(trigger.id.uuidString.lowercased()): \(beyond.count) of \(matching) devices with "
                                      + "\(metric.rawValue) ≥ \(spec.condition.threshold) for \(spec.condition.effectiveForS) s.")
        do {
            return try pool.withTransaction { c -> Outcome in
                guard try triggers.claimFiring(trigger.id, now: now, on: c) else { return .holding(since: since) }
                let created = try launch.launch(request, now: now, on: c)
                try triggers.recordFiring(trigger: trigger.id, domain: created.domain.id, campaign: created.campaign.id, devices: beyond, now: now, on: c)
                Log.info("trigger \(trigger.id.uuidString.lowercased()) (\(spec.name)) fired: domain \(created.domain.id.uuidString.lowercased()), "
                         + "campaign \(created.campaign.id.uuidString.lowercased()) over \(beyond.count) device(s)")
                var shown = created
                shown.domain.origin = DomainOrigin(triggerID: trigger.id, firedAt: now, deviceIDs: beyond)
                return .fired(shown)
            }
        } catch let refusal as CampaignLaunch.Refusal {
            return .refused("\(refusal)")
        }
    }
}
