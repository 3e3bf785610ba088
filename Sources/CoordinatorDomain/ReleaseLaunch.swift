import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient

/// Creating a model release: the release runs as a campaign (`CampaignLaunch`) of `profile` jobs for the release's
/// model, so its waves, thresholds, pause, resume and cancel are the campaign machinery's. When a device's job
/// succeeds (it downloaded the package and measured it), `JobFollowups` moves its config to the model.
package struct ReleaseLaunch: Sendable {
    package let idempotency: IdempotencyStore
    package let models: ModelStore
    package let releases: ReleaseStore
    package let campaigns: CampaignStore
    package let jobs: JobStore
    package let launch: CampaignLaunch

    package init(stores: CoordinatorStores, launch: CampaignLaunch) {
        idempotency = stores.idempotency
        models = stores.models
        releases = ReleaseStore(pool: stores.pool)
        campaigns = stores.campaigns
        jobs = stores.jobs
        self.launch = launch
    }

    /// Why a release cannot be created; nothing was written.
    package enum Refusal: Error, Equatable {
        case campaign(CampaignLaunch.Refusal)
        /// The model is deprecated, or is not an elastic package the planner can plan with.
        case notReleasable(UUID, String)
    }

    /// Creates the release once per key; the stored answer is the `ReleaseView` as JSON.
    package func create(_ request: ReleaseRequest, idempotencyKey key: String?, requestBody: [UInt8], now: Date) throws -> IdempotencyStore.Outcome {
        let make = { (c: PostgresConnection) throws -> IdempotencyStore.StoredAnswer in
            IdempotencyStore.StoredAnswer(status: 201, body: try WireJSON.bytes(try launchRelease(request, now: now, on: c)))
        }
        guard let key else { return .fresh(try idempotency.unkeyed(make)) }
        return try idempotency.run(scope: "POST /v1/releases", key: key, requestBody: requestBody, now: now,
                                   create: { c in let a = try make(c); return (a, a) },
                                   replay: { _, stored in stored })
    }

    private func launchRelease(_ request: ReleaseRequest, now: Date, on c: PostgresConnection) throws -> ReleaseView {
        guard let (model, plannable) = try models.findPlannable(request.modelID, on: c) else { throw Refusal.campaign(.unknownModel(request.modelID)) }
        if model.deprecatedAt != nil { throw Refusal.notReleasable(model.id, "is deprecated") }
        guard plannable else { throw Refusal.notReleasable(model.id, "is not an elastic package the planner can plan with") }
        let created: DomainCreated
        do { created = try launch.launch(request.campaignRequest(name: "release of \(model.name) v\(model.version)"), now: now, on: c) } catch let refusal as CampaignLaunch.Refusal {
            throw Refusal.campaign(refusal)
        }
        let id = UUID()
        try releases.insert(id: id, campaignID: created.campaign.id, request: request, now: now, on: c)
        if let start = request.startAt, start > now { try jobs.delayQueued(campaign: created.campaign.id, until: start, on: c) }
        guard let view = try view(id, on: c) else {
            throw PostgresError(kind: .decode, message: "release \(id.uuidString.lowercased()) is not readable in the transaction that wrote it")
        }
        return view
    }

    package func view(_ id: UUID, on c: PostgresConnection? = nil) throws -> ReleaseView? {
        guard let row = try releases.find(id, on: c), let campaign = try campaigns.view(row.campaignID, on: c) else { return nil }
        return Self.view(row, campaign: campaign)
    }

    package static func view(_ row: ReleaseStore.Row, campaign: CampaignView) -> ReleaseView {
        ReleaseView(id: row.id, modelID: row.modelID, selector: row.spec.selector, startAt: row.startAt, status: campaign.status,
                    campaign: campaign, createdAt: row.createdAt)
    }
}
