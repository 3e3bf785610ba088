import FleetAPI
import Foundation
import HTTPServer
import PostgresClient
import Rollout

/// What every route needs, built once at start-up and shared by all worker threads.
struct Services: Sendable {
    let pool: PostgresPool
    let clock: WallClock
    let metrics: Metrics
    let auth: Authenticator
    let devices: DeviceStore
    let idempotency: IdempotencyStore
    let models: ModelStore
    let jobs: JobStore
    let artifacts: JobArtifactStore
    let campaigns: CampaignStore
    let metricsStore: MetricsStore
    let scheduler: CampaignScheduler
    let results: ResultRecorder
    let waiters: JobWaiters
    let aggregator: AdapterAggregator
    let configs: ConfigStore
    let replanner: Replanner
    let backoff: Backoff
    let migrations: MigrationRunner
    let openAPIPath: String

    init(pool: PostgresPool, clock: WallClock, adminKey: AdminKey, migrations: MigrationRunner, openAPIPath: String,
         backoff: Backoff = Backoff(), authFailures: AuthFailurePolicy = AuthFailurePolicy(), defaultLeaseSeconds: Int = 30) {
        self.pool = pool
        self.clock = clock
        self.metrics = Metrics()
        let devices = DeviceStore(pool: pool)
        self.devices = devices
        self.auth = Authenticator(adminKey: adminKey, devices: devices, clock: clock,
                                  failures: AuthFailureLimiter(policy: authFailures))
        self.idempotency = IdempotencyStore(pool: pool)
        let models = ModelStore(pool: pool)
        self.models = models
        let jobs = JobStore(pool: pool)
        self.jobs = jobs
        self.artifacts = JobArtifactStore(pool: pool, jobs: jobs)
        let campaigns = CampaignStore(pool: pool, defaultLeaseSeconds: defaultLeaseSeconds)
        self.campaigns = campaigns
        let metricsStore = MetricsStore(pool: pool)
        self.metricsStore = metricsStore
        self.scheduler = CampaignScheduler(pool: pool, campaigns: campaigns, jobs: jobs)
        self.results = ResultRecorder(pool: pool, metrics: metricsStore, latencies: VariantLatencyStore(pool: pool), jobs: jobs)
        self.waiters = JobWaiters(jobs: jobs, clock: clock)
        let aggregator = AdapterAggregator(pool: pool)
        self.aggregator = aggregator
        let configs = ConfigStore(pool: pool)
        self.configs = configs
        self.replanner = Replanner(devices: devices, models: models, jobs: jobs, configs: configs, aggregator: aggregator, clock: clock)
        self.backoff = backoff
        self.migrations = migrations
        self.openAPIPath = openAPIPath
    }

    /// Registers a handler wrapped with what every route shares: who may call it (decided from the headers
    /// before the body is read), database errors mapped to problems, and metrics.
    func route(_ router: Router, _ method: HTTPMethod, _ pattern: String, access: Access, options: RouteOptions = .init(),
               _ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        let metrics = self.metrics
        var options = options
        options.authorize = authorizer(access)
        router.add(method, pattern, options: options) { request in
            let start = ContinuousClock.now
            var status = 500
            defer {
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                metrics.observe(method: method.rawValue, route: pattern, status: status, seconds: seconds)
            }
            do {
                let response = try mapDatabaseErrors(request.requestID) { try handler(request) }
                status = response.status
                return response
            } catch let error as HTTPError {
                status = error.status
                throw error
            }
        }
    }
}

extension Services {
    /// `Authenticator.authorizer` with database errors mapped to problems, as in handlers.
    func authorizer(_ access: Access) -> RequestAuthorizer? {
        guard let check = auth.authorizer(access) else { return nil }
        return { request in try mapDatabaseErrors(request.requestID) { try check(request) } }
    }
}

extension HTTPResponse {
    /// JSON with the coordinator's encoder (sorted keys, microsecond RFC 3339 timestamps).
    static func body<T: Encodable>(_ value: T, status: Int = 200, headers: HTTPHeaders = .init()) throws -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: try JSON.bytes(value))
    }
}

extension HTTPRequest {
    /// Decodes a JSON body, then validates it; every failure is a 4xx problem naming the field.
    func decodeValidated<T: Decodable>(_ type: T.Type, validate: (T) -> [ValidationIssue]) throws -> T {
        let value = try decodeJSON(type)
        let issues = validate(value)
        if !issues.isEmpty {
            throw HTTPError.validation(issues.map { FieldError(field: $0.field, message: $0.message) })
        }
        return value
    }

    /// A UUID path parameter; anything else is a 400 naming the parameter, never a 404 or a 500.
    func uuidParameter(_ name: String) throws -> UUID {
        guard let text = pathParameters[name], let id = UUID(uuidString: text) else {
            throw HTTPError.badRequest("'\(pathParameters[name] ?? "")' is not a UUID.", code: "invalid_parameter",
                                       errors: [FieldError(field: name, message: "must be a UUID")])
        }
        return id
    }
}
