import FleetAPI
import Foundation
import PostgresClient

/// SQL for `job_artifacts`: the adapter weights (safetensors) each attempt of a job uploaded.
package struct JobArtifactStore: Sendable {
    package let pool: PostgresPool
    package let jobs: JobStore

    package init(pool: PostgresPool, jobs: JobStore) {
        self.pool = pool
        self.jobs = jobs
    }

    package enum Upload: Equatable {
        case stored
        /// The job is this device's, but that attempt no longer holds it.
        case staleAttempt
        /// No such job for this device.
        case notFound
    }

    /// Stores one attempt's artifact (a re-upload of the same attempt replaces it) and stamps its digest on the job,
    /// in one transaction, while the attempt holds the job: the job row stays locked meanwhile (`JobStore.holds`), so
    /// an artifact of an old attempt never lands after a newer attempt took the job.
    package func upload(job: UUID, device: UUID, attempt: Int, sha256: [UInt8], content: [UInt8], now: Date) throws -> Upload {
        try pool.withTransaction { c in
            guard try jobs.holds(job: job, device: device, attempt: attempt, on: c) else {
                return try jobs.exists(job: job, device: device) ? .staleAttempt : .notFound
            }
            try c.query("""
                INSERT INTO job_artifacts (job_id, attempt, sha256, size_bytes, content, created_at)
                VALUES (\(job), \(attempt), \(sha256), \(content.count), \(content), \(now))
                ON CONFLICT (job_id, attempt) DO UPDATE SET sha256 = EXCLUDED.sha256, size_bytes = EXCLUDED.size_bytes,
                    content = EXCLUDED.content, created_at = EXCLUDED.created_at
                """)
            try jobs.recordArtifact(job: job, sha256: sha256, now: now, on: c)
            return .stored
        }
    }

    /// The artifact of a succeeded `adapt` job's final attempt, with what folding it needs: its domain, its job
    /// document (JSON) and the samples its result reports. Read in the caller's transaction (the job's follow-ups).
    package func succeededAdaptation(job: UUID, on c: PostgresConnection) throws -> (domain: UUID, content: [UInt8], document: String, samples: Int?)? {
        guard let row = try c.query("""
            SELECT cp.domain_id, a.content, j.document::text AS document, (j.result->'metrics'->>'samples')::bigint AS samples
            FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id
            JOIN job_artifacts a ON a.job_id = j.id AND a.attempt = j.attempt
            WHERE j.id = \(job) AND j.state = 'succeeded' AND j.kind = 'adapt'
            """).rows.first else { return nil }
        return (try row.decode("domain_id", as: UUID.self), try row.decode("content", as: [UInt8].self),
                try row.decode("document", as: String.self), try row.decode("samples", as: Int?.self))
    }

    /// The artifact of `device`'s newest succeeded `adapt` job in `domain` (its final attempt's) outside rolled-back
    /// campaigns: the adapters a config with `local` adapters of that domain runs (as `JobStore.lastAdaptations`). Digest only; `content(job:attempt:)` reads the bytes.
    /// Reads on `c` when given (a rollback inside its transaction).
    package func newestAdaptation(device: UUID, domain: UUID, on c: PostgresConnection? = nil) throws -> (job: UUID, attempt: Int, sha256: [UInt8])? {
        let q: PostgresQuery = """
            SELECT j.id, a.attempt, a.sha256
            FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id AND cp.status NOT IN ('rolling_back', 'rolled_back')
            JOIN job_artifacts a ON a.job_id = j.id AND a.attempt = j.attempt
            WHERE j.device_id = \(device) AND cp.domain_id = \(domain) AND j.kind = 'adapt' AND j.state = 'succeeded'
            ORDER BY j.finished_at DESC, j.id LIMIT 1
            """
        guard let row = try (c.map { try $0.query(q) } ?? pool.query(q)).rows.first else { return nil }
        return (try row.decode("id", as: UUID.self), try row.decode("attempt", as: Int.self), try row.decode("sha256", as: [UInt8].self))
    }

    /// The artifact of `device`'s own succeeded `adapt` job `job` (its final attempt's): what a `restore` job of that
    /// device may download as its previous local adapters. Another device's job, or one that did not succeed, is nil.
    package func ownSucceededArtifact(job: UUID, device: UUID) throws -> (sha256: [UInt8], content: [UInt8])? {
        guard let row = try pool.query("""
            SELECT a.sha256, a.content FROM jobs j JOIN job_artifacts a ON a.job_id = j.id AND a.attempt = j.attempt
            WHERE j.id = \(job) AND j.device_id = \(device) AND j.kind = 'adapt' AND j.state = 'succeeded'
            """).rows.first else { return nil }
        return (try row.decode("sha256", as: [UInt8].self), try row.decode("content", as: [UInt8].self))
    }

    /// The bytes one attempt of a job uploaded.
    package func content(job: UUID, attempt: Int) throws -> [UInt8]? {
        try pool.query("SELECT content FROM job_artifacts WHERE job_id = \(job) AND attempt = \(attempt)").rows.first?.decode("content", as: [UInt8].self)
    }

    /// Whether `attempt` of `device`'s `adapt` job holds the job and uploaded no artifact (false for other kinds,
    /// other devices' jobs, and attempts that no longer hold the job: the job store answers those).
    package func heldAdaptationLacksArtifact(job: UUID, device: UUID, attempt: Int) throws -> Bool {
        guard let row = try pool.query("""
            SELECT j.kind, EXISTS (SELECT 1 FROM job_artifacts a WHERE a.job_id = j.id AND a.attempt = \(attempt)) AS uploaded
            FROM jobs j
            WHERE j.id = \(job) AND j.device_id = \(device) AND j.attempt = \(attempt) AND j.state IN ('leased', 'running')
            """).rows.first else { return false }
        return try row.decode("kind", as: String.self) == JobKind.adapt.rawValue && !row.decode("uploaded", as: Bool.self)
    }
}
