import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient
import Rollout

/// Posting a domain-shift event: resolve the selector to active devices, plan each device's job
/// (`Rollout.RolloutPlan`), and write the domain, its campaign and every job in one transaction, which the request's
/// `Idempotency-Key` record commits with (a retried request replays the first answer instead of creating twice).
package struct CampaignLaunch: Sendable {
    package let idempotency: IdempotencyStore
    package let models: ModelStore
    package let devices: DeviceStore
    package let campaigns: CampaignStore
    package let jobs: JobStore
    /// Lease of an attempt when the domain names none (capped by the job's timeout).
    package let defaultLeaseSeconds: Int

    package init(stores: CoordinatorStores, defaultLeaseSeconds: Int) {
        idempotency = stores.idempotency
        models = stores.models
        devices = stores.devices
        campaigns = stores.campaigns
        jobs = stores.jobs
        self.defaultLeaseSeconds = defaultLeaseSeconds
    }

    /// Why a campaign cannot be created; nothing was written. The route answers each as a 422 naming the field.
    package enum Refusal: Error, Equatable {
        case unknownModel(UUID)
        /// Selected ids that are not active devices (all of them; the answer shows a few).
        case unknownDevices([UUID])
        case noTargets
    }

    /// Creates the campaign once per key (`key` nil: no key, nothing remembered). The stored answer is the created
    /// `DomainCreated` as JSON.
    /// - Throws: `Refusal` (nothing written), or a database error.
    package func create(_ request: DomainRequest, idempotencyKey key: String?, requestBody: [UInt8], now: Date) throws -> IdempotencyStore.Outcome {
        let make = { (c: PostgresConnection) throws -> IdempotencyStore.StoredAnswer in
            IdempotencyStore.StoredAnswer(status: 201, body: try WireJSON.bytes(try launch(request, now: now, on: c)))
        }
        guard let key else { return .fresh(try idempotency.unkeyed(make)) }
        return try idempotency.run(scope: "POST /v1/domains", key: key, requestBody: requestBody, now: now,
                                   create: { c in let a = try make(c); return (a, a) },
                                   replay: { _, stored in stored })
    }

    /// Resolves the targets, plans each device's job, and writes domain, campaign and jobs in the caller's transaction.
    package func launch(_ request: DomainRequest, now: Date, on c: PostgresConnection) throws -> DomainCreated {
        guard try models.exists(request.modelID, on: c) else { throw Refusal.unknownModel(request.modelID) }
        let targets = try devices.targets(labels: request.selector.labels, ids: request.selector.deviceIDs, on: c)
        if let ids = request.selector.deviceIDs {
            let found = Set(targets.map(\.id))
            let missing = ids.filter { !found.contains($0) }
            if !missing.isEmpty { throw Refusal.unknownDevices(missing) }
        }
        guard !targets.isEmpty else { throw Refusal.noTargets }
        let domainID = UUID()
        let campaignID = UUID()
        let plan = RolloutPlan(devices: targets, request: request, domainID: domainID)
        try campaigns.create(domainID: domainID, campaignID: campaignID, request: request, targetCount: plan.targets.count,
                             waveCount: plan.waveCount, now: now, on: c)
        try jobs.insertQueued(campaign: campaignID, targets: plan.targets, maxAttempts: request.job.maxAttempts,
                              timeoutS: request.job.timeoutS, leaseS: request.job.leaseS ?? min(defaultLeaseSeconds, request.job.timeoutS), on: c)
        let events = CampaignEventStore(pool: campaigns.pool)
        try events.record(campaignID, .created, cause: .operator, details: .init(devices: plan.targets.count), now: now, on: c)
        // The canary wave is released at once, unless the schedule is closed now: then the campaign waits for it.
        let schedule = CampaignScheduler.schedule(request)
        if schedule.isOpen(at: now) {
            try events.record(campaignID, .waveReleased, cause: .rollout,
                              details: .init(wave: 0, devices: plan.targets.filter { $0.wave == 0 }.count), now: now, on: c)
        } else {
            let (reason, opens) = CampaignScheduler.holdReason(schedule, now: now)
            try campaigns.hold(campaignID, reason: reason, now: now, on: c)
            try events.record(campaignID, .scheduleClosed, cause: .schedule, details: .init(reason: reason, opensAt: opens), now: now, on: c)
        }
        guard let domain = try campaigns.domain(domainID, on: c), let campaign = try campaigns.view(campaignID, on: c) else {
            throw PostgresError(kind: .decode, message: "campaign \(campaignID.uuidString.lowercased()) is not readable in the transaction that wrote it")
        }
        return DomainCreated(domain: domain, campaign: campaign)
    }

    /// Continuous targeting: active devices that match a running campaign's label selector but have no job in it
    /// (registered or relabelled since) get one, in the released wave, planned like the first targets. Runs in the
    /// caller's transaction, which holds the campaign's row (`CampaignScheduler.evaluate`). Returns how many.
    package func addLaterTargets(campaign: UUID, spec: DomainRequest, wave: Int, now: Date, on c: PostgresConnection) throws -> Int {
        guard spec.selector.deviceIDs == nil, let labels = spec.selector.labels, !labels.isEmpty,
              let limits = try jobs.limits(campaign: campaign, on: c),
              let domainID = try campaigns.domainID(ofCampaign: campaign, on: c)
        else { return 0 }
        let have = try jobs.devices(inCampaign: campaign, on: c)
        let fresh = try devices.targets(labels: labels, ids: nil, on: c).filter { !have.contains($0.id) }
        guard !fresh.isEmpty else { return 0 }
        let plan = RolloutPlan(devices: fresh, request: spec, domainID: domainID)
        let targets = plan.targets.map { RolloutPlan.Target(deviceID: $0.deviceID, wave: wave, document: $0.document) }
        try jobs.insertQueued(campaign: campaign, targets: targets, maxAttempts: limits.maxAttempts, timeoutS: limits.timeoutS,
                              leaseS: limits.leaseS, on: c)
        try campaigns.addTargets(campaign, count: targets.count, now: now, on: c)
        return targets.count
    }
}
