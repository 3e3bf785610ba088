import Foundation
import PostgresClient

/// Every store of the coordinator over one pool: one store per table or aggregate, the only code that holds SQL.
/// Built once at start-up; the use cases and routes take the stores they need from it.
package struct CoordinatorStores: Sendable {
    package let pool: PostgresPool
    package let devices: DeviceStore
    package let idempotency: IdempotencyStore
    package let models: ModelStore
    package let variantLatencies: VariantLatencyStore
    package let configs: ConfigStore
    package let campaigns: CampaignStore
    package let jobs: JobStore
    package let artifacts: JobArtifactStore
    package let domainAdapters: DomainAdapterStore
    package let metrics: MetricsStore
    package let apiKeys: ApiKeyStore
    package let enrolmentTokens: EnrolmentTokenStore
    package let audit: AuditStore
    package let drift: DriftStore
    package let triggers: TriggerStore

    package init(pool: PostgresPool) {
        self.pool = pool
        devices = DeviceStore(pool: pool)
        idempotency = IdempotencyStore(pool: pool)
        models = ModelStore(pool: pool)
        variantLatencies = VariantLatencyStore(pool: pool)
        configs = ConfigStore(pool: pool)
        campaigns = CampaignStore(pool: pool)
        let jobs = JobStore(pool: pool)
        self.jobs = jobs
        artifacts = JobArtifactStore(pool: pool, jobs: jobs)
        domainAdapters = DomainAdapterStore(pool: pool)
        metrics = MetricsStore(pool: pool)
        apiKeys = ApiKeyStore(pool: pool)
        enrolmentTokens = EnrolmentTokenStore(pool: pool)
        audit = AuditStore(pool: pool)
        drift = DriftStore(pool: pool)
        triggers = TriggerStore(pool: pool)
    }
}

/// Whether the database can serve this build: it answers, and every migration the build knows is applied.
package struct DatabaseHealth: Sendable {
    package let pool: PostgresPool
    package let migrations: MigrationRunner

    package init(pool: PostgresPool, migrations: MigrationRunner) {
        self.pool = pool
        self.migrations = migrations
    }

    /// The migrations still to apply (empty when ready); throws when the database does not answer.
    package func pendingMigrations() throws -> [String] {
        try pool.ping()
        return try migrations.pending(pool)
    }
}
