import FleetAPI
import Foundation
import Learning
import PostgresClient

/// Fleet-level learning: the adapters that devices of one domain trained are averaged per tensor, weighted by
/// the samples each device trained on, into a domain adapter that devices unable to train can apply.
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
        do {
            guard let row = try c.query("""
                SELECT cp.domain_id, a.content, COALESCE((j.result->'metrics'->>'samples')::bigint, 1) AS samples
                FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id
                JOIN job_artifacts a ON a.job_id = j.id AND a.attempt = j.attempt
                WHERE j.id = \(job) AND j.state = 'succeeded' AND j.kind = 'adapt'
                """).rows.first else { return nil }
            let domain = try row.decode("domain_id", as: UUID.self)
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(domain.uuidString), 2))")
            guard let artifact = try? SafeTensors.decode(try row.decode("content", as: [UInt8].self)).tensors, !artifact.isEmpty else { return nil }
            let w = Double(max(1, try row.decode("samples", as: Int.self)))

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
            // The whole artifact is refused if any tensor disagrees in shape with what was averaged so far.
            guard average.fold(artifact, weight: w) else { return nil }
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
