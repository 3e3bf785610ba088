import CoordinatorDomain
import CoordinatorStore
import Foundation
import HTTPServer
import PostgresClient
import Rollout

/// The coordinator's object graph over one database pool, built once at start-up: the stores, the use cases, the
/// authenticator and the metrics. It is the composition root only: each route group is given the few stores and
/// use cases it needs (`makeRouter`), never this whole graph.
package struct CoordinatorServices: Sendable {
    package let stores: CoordinatorStores
    package let clock: WallClock
    package let backoff: Backoff
    package let metrics: Metrics
    package let auth: Authenticator
    package let health: DatabaseHealth
    package let scheduler: CampaignScheduler
    package let results: ResultRecorder
    package let waiters: JobWaiters
    package let aggregator: AdapterAggregator
    package let artifactPolicy: ArtifactPolicy
    package let upload: ArtifactUpload
    package let replanner: Replanner
    package let followups: JobFollowups
    package let completion: JobCompletion
    package let launch: CampaignLaunch
    package let releaseLaunch: ReleaseLaunch
    package let enrollment: DeviceEnrollment
    /// Drift triggers: evaluated by maintenance and after a device turns drifting.
    package let triggerEvaluator: TriggerEvaluator
    /// Writes the audit log for every route (`RouteRegistrar`).
    package let auditor: Auditor
    /// The access every route was registered with (filled by `makeRouter`).
    package let routeAccess = RouteAccessTable()
    /// Where `GET /openapi.yaml` is read from.
    package let openAPIPath: String?
    /// Largest model package `POST /v1/models` accepts.
    package let modelUploadLimitBytes: Int
    /// nil while the process can serve; otherwise why it cannot recover (then `/healthz` fails).
    package let liveness: @Sendable () -> String?
    /// "METHOD /pattern" → the query parameters its operation declares (the OpenAPI document's); others are refused.
    package let queryParameters: [String: Set<String>]?

    package init(pool: PostgresPool, clock: WallClock, adminKey: AdminKey, migrations: MigrationRunner, openAPIPath: String?,
         backoff: Backoff = Backoff(), authFailures: AuthFailurePolicy = AuthFailurePolicy(), defaultLeaseSeconds: Int = 30,
         restoreDeadline: TimeInterval = Rollback.defaultRestoreDeadline,
         modelUploadLimitBytes: Int = 256 << 20, queryParameters: [String: [String]]? = nil,
         liveness: @escaping @Sendable () -> String? = { nil }) {
        self.queryParameters = queryParameters.map { $0.mapValues(Set.init) }
        let stores = CoordinatorStores(pool: pool)
        self.stores = stores
        self.clock = clock
        self.backoff = backoff
        metrics = Metrics()
        auth = Authenticator(adminKey: adminKey, devices: stores.devices, apiKeys: stores.apiKeys, enrolmentTokens: stores.enrolmentTokens,
                             clock: clock, failures: AuthFailureLimiter(policy: authFailures))
        auditor = Auditor(store: stores.audit)
        health = DatabaseHealth(pool: pool, migrations: migrations)
        let launch = CampaignLaunch(stores: stores, defaultLeaseSeconds: defaultLeaseSeconds)
        let scheduler = CampaignScheduler(pool: pool, campaigns: stores.campaigns, jobs: stores.jobs, launch: launch,
                                          rollback: Rollback(pool: pool, restoreDeadline: restoreDeadline))
        self.scheduler = scheduler
        let results = ResultRecorder(metrics: stores.metrics, latencies: stores.variantLatencies, jobs: stores.jobs)
        self.results = results
        waiters = JobWaiters(jobs: stores.jobs)
        let aggregator = AdapterAggregator(stores: stores)
        self.aggregator = aggregator
        let artifactPolicy = ArtifactPolicy(jobs: stores.jobs, models: stores.models, artifacts: stores.artifacts)
        self.artifactPolicy = artifactPolicy
        upload = ArtifactUpload(policy: artifactPolicy, artifacts: stores.artifacts)
        let metrics = self.metrics
        let replanner = Replanner(devices: stores.devices, models: stores.models, jobs: stores.jobs, configs: stores.configs,
                                  aggregator: aggregator, clock: clock, observe: { metrics.observeReplan(scope: $0, seconds: $1) })
        self.replanner = replanner
        let followups = JobFollowups(pool: pool, jobs: stores.jobs, aggregator: aggregator, replanner: replanner, clock: clock,
                                      rollback: scheduler.rollback)
        self.followups = followups
        completion = JobCompletion(jobs: stores.jobs, results: results, followups: followups, scheduler: scheduler, backoff: backoff, clock: clock)
        self.launch = launch
        releaseLaunch = ReleaseLaunch(stores: stores, launch: launch)
        enrollment = DeviceEnrollment(devices: stores.devices, idempotency: stores.idempotency, replanner: replanner)
        triggerEvaluator = TriggerEvaluator(stores: stores, launch: launch, clock: clock)
        self.openAPIPath = openAPIPath
        self.modelUploadLimitBytes = modelUploadLimitBytes
        self.liveness = liveness
    }

    /// What the maintenance loop works with.
    package var maintenanceWork: Maintenance.Work {
        var work = Maintenance.Work(jobs: stores.jobs, campaigns: stores.campaigns, scheduler: scheduler, followups: followups,
                                    replanner: replanner, waiters: waiters, backoff: backoff, clock: clock)
        work.triggers = triggerEvaluator
        return work
    }

    /// Every route of the coordinator over these services, on a fresh router: no socket, no database start, so
    /// tests can call it in-process (`Router.respond`) as well as serve it.
    package func makeRouter() -> Router {
        let router = Router()
        let routes = RouteRegistrar(router: router, auth: auth, metrics: metrics, auditor: auditor, accessTable: routeAccess,
                                    queryParameters: queryParameters)
        let s = stores
        SystemRoutes(routes: routes, health: health, openAPIPath: openAPIPath, liveness: liveness).register()
        DeviceRoutes(routes: routes, devices: s.devices, enrollment: enrollment, replanner: replanner, clock: clock, drift: s.drift).register()
        AgentRoutes(routes: routes, devices: s.devices, replanner: replanner, clock: clock).register()
        AgentJobRoutes(routes: routes, jobs: s.jobs, upload: upload, metricsStore: s.metrics, waiters: waiters,
                       policy: artifactPolicy, completion: completion, aggregator: aggregator,
                       restore: RestoreDownload(jobs: s.jobs, artifacts: s.artifacts, domainAdapters: s.domainAdapters), replanner: replanner,
                       clock: clock).register()
        DomainRoutes(routes: routes, campaigns: s.campaigns, launch: launch, clock: clock, triggers: s.triggers).register()
        CampaignRoutes(routes: routes, campaigns: s.campaigns, scheduler: scheduler, clock: clock, jobs: s.jobs).register()
        MetricsRoutes(routes: routes, devices: s.devices, campaigns: s.campaigns, jobs: s.jobs, metrics: s.metrics, drift: s.drift).register()
        ModelRoutes(routes: routes, models: s.models, clock: clock, uploadLimit: modelUploadLimitBytes).register()
        ConfigRoutes(routes: routes, devices: s.devices, configs: s.configs, replanner: replanner).register()
        DeviceModelRoutes(routes: routes, devices: s.devices,
                          export: DeviceModelExport(configs: s.configs, models: s.models, artifacts: s.artifacts, domainAdapters: s.domainAdapters))
            .register()
        ReleaseRoutes(routes: routes, releases: releaseLaunch.releases, campaigns: s.campaigns, launch: releaseLaunch, scheduler: scheduler,
                      clock: clock).register()
        ApiKeyRoutes(routes: routes, apiKeys: s.apiKeys, clock: clock).register()
        EnrolmentRoutes(routes: routes, tokens: s.enrolmentTokens, enrollment: enrollment, clock: clock).register()
        AuditRoutes(routes: routes, audit: s.audit).register()
        DriftRoutes(routes: routes, drift: s.drift, evaluator: triggerEvaluator, clock: clock).register()
        TriggerRoutes(routes: routes, triggers: s.triggers, idempotency: s.idempotency, clock: clock).register()
        // The web dashboard: its static files (open) and the plot data of its models page (viewer).
        UIRoutes(routes: routes).register()
        UIPlotRoutes(routes: routes, models: s.models).register()
        return router
    }
}
