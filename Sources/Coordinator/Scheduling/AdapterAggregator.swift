import FleetAPI
import Foundation
import Learning
import PostgresClient

/// Fleet-level learning: the adapters that devices of one domain trained are averaged per tensor, weighted by
/// the samples each device trained on, into a domain adapter that devices unable to train can apply.
///
/// A device's weight is the samples it reports, bounded by what its job document allowed it to train on
/// (`ArtifactPolicy.sampleWeight`), and its artifact is re-checked against its job's combination before it is
/// folded in (artifacts are checked at upload already; this also covers artifacts stored before that check).
///
/// Incremental: each success folds its one artifact into the newest version (per tensor: (W·old + w·new) / (W + w)),
/// so a campaign of n devices costs O(n) in total, not O(n²). Per-tensor weights W travel in the adapter's
/// safetensors metadata (`weights`), because tensors belong to the variant a device ran: each is averaged over the
/// devices that ran it. Successes of one domain are serialised by an advisory lock, and each job is folded once
/// (the caller only aggregates on the transition to `succeeded`).
struct AdapterAggregator: Sendable {
    let pool: PostgresPool

    /// Folds the artifact of `job` into its domain's adapter; returns the new version, or nil when the job has
    /// no artifact (an `apply` job) or the artifact cannot be averaged.
    @discardableResult
    func aggregate(afterJob job: UUID, now: Date) throws -> Int? {
        try pool.withTransaction { c in try aggregate(afterJob: job, now: now, on: c) }
    }

    /// The same inside the caller's transaction (the job's follow-ups: the fold and its outbox mark commit together).
    func aggregate(afterJob job: UUID, now: Date, on c: PostgresConnection) throws -> Int? {
        guard let row = try c.query("""
            SELECT cp.domain_id, a.content, j.document::text AS document, (j.result->'metrics'->>'samples')::bigint AS samples
            FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id
            JOIN job_artifacts a ON a.job_id = j.id AND a.attempt = j.attempt
            WHERE j.id = \(job) AND j.state = 'succeeded' AND j.kind = 'adapt'
            """).rows.first else { return nil }
        let domain = try row.decode("domain_id", as: UUID.self)
        try c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(domain.uuidString), 2))")
        guard let artifact = try? SafeTensors.decode(try row.decode("content", as: [UInt8].self)).tensors, !artifact.isEmpty else { return nil }
        let document = try JSON.decode(JobDocument.self, from: try row.decode("document", as: String.self))
        let problems = try ArtifactPolicy(pool: pool).problems(artifact, document: document, on: c)
        guard problems.isEmpty else {
            Log.error("job \(job.uuidString.lowercased())'s artifact is not folded into domain \(domain.uuidString.lowercased())'s adapter: \(problems.prefix(3).map { "\($0.field) \($0.message)" })")
            return nil
        }
        let w = Double(ArtifactPolicy.sampleWeight(reported: try row.decode("samples", as: Int?.self), document: document))

        var average = try WeightedTensorAverage()
        var version = 0, devices = 0, samples = 0
        if let latest = try c.query("""
            SELECT version, content, device_count, sample_count FROM domain_adapters WHERE domain_id = \(domain)
            ORDER BY version DESC LIMIT 1
            """).rows.first {
            version = try latest.decode("version", as: Int.self)
            devices = try latest.decode("device_count", as: Int.self)
            samples = try latest.decode("sample_count", as: Int.self)
            let (tensors, meta) = try SafeTensors.decode(try latest.decode("content", as: [UInt8].self))
            let weights = meta["weights"].flatMap { try? JSON.decode([String: Double].self, from: $0) } ?? [:]
            average = try WeightedTensorAverage(tensors: tensors, weights: weights, defaultWeight: Double(samples))
        }
        // The whole artifact is refused if any tensor disagrees in shape with what was averaged so far (checked
        // artifacts of one model cannot; one domain has one campaign, so one model).
        guard average.fold(artifact, weight: w) else {
            Log.error("job \(job.uuidString.lowercased())'s artifact disagrees in shape with domain \(domain.uuidString.lowercased())'s adapter; not folded in")
            return nil
        }
        let bytes = SafeTensors.encode(average.tensors, metadata: [
            "devices": String(devices + 1), "samples": String(samples + Int(w)),
            "weights": try JSON.string(average.weights),
        ])
        try c.query("""
            INSERT INTO domain_adapters (domain_id, version, sha256, content, device_count, sample_count, created_at)
            VALUES (\(domain), \(version + 1), \(Secrets.sha256(bytes)), \(bytes), \(devices + 1), \(samples + Int(w)), \(now))
            """)
        return version + 1
    }

    /// Whether `device` is a target of `domain`: it has a job in the domain's campaign.
    func targets(domain: UUID, device: UUID) throws -> Bool {
        !(try pool.query("""
            SELECT 1 FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id
            WHERE cp.domain_id = \(domain) AND j.device_id = \(device) LIMIT 1
            """).rows.isEmpty)
    }

    /// The newest aggregated adapter of a domain: (version, sha256, bytes).
    func latest(domain: UUID) throws -> (version: Int, sha256: [UInt8], content: [UInt8])? {
        guard let row = try pool.query("""
            SELECT version, sha256, content FROM domain_adapters WHERE domain_id = \(domain) ORDER BY version DESC LIMIT 1
            """).rows.first else { return nil }
        return (try row.decode("version", as: Int.self), try row.decode("sha256", as: [UInt8].self), try row.decode("content", as: [UInt8].self))
    }

    /// Newest aggregated version per domain.
    func latestVersions(_ domains: [UUID]) throws -> [UUID: Int] {
        try pool.withConnection { try latestVersions(domains, on: $0) }
    }

    func latestVersions(_ domains: [UUID], on c: PostgresConnection) throws -> [UUID: Int] {
        guard !domains.isEmpty else { return [:] }
        var out: [UUID: Int] = [:]
        for row in try c.query("""
            SELECT domain_id, max(version) AS version FROM domain_adapters WHERE domain_id = ANY(\(PostgresArray(domains))) GROUP BY domain_id
            """).rows {
            out[try row.decode("domain_id", as: UUID.self)] = try row.decode("version", as: Int.self)
        }
        return out
    }
}
