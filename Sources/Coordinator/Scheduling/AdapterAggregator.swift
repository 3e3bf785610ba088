import FleetAPI
import Foundation
import Learning
import PostgresClient

/// Fleet-level learning: the adapters that devices of one domain trained are averaged per tensor, weighted by
/// the samples each device trained on, into a domain adapter that devices unable to train can apply.
/// Recomputed from all succeeded attempts after each success (O(devices) per result; fine for campaigns of
/// thousands, to be made incremental for larger ones).
struct AdapterAggregator: Sendable {
    let pool: PostgresPool

    /// Re-aggregates the domain of `job`; returns the new version, or nil when nothing could be averaged.
    @discardableResult
    func aggregate(afterJob job: UUID, now: Date) throws -> Int? {
        try pool.withTransaction { c in
            guard let domainRow = try c.query("""
                SELECT cp.domain_id FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id WHERE j.id = \(job)
                """).rows.first else { return nil }
            let domain = try domainRow.decode("domain_id", as: UUID.self)
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(domain.uuidString), 2))")
            let rows = try c.query("""
                SELECT a.content, COALESCE((j.result->'metrics'->>'samples')::bigint, 1) AS samples
                FROM jobs j JOIN campaigns cp ON cp.id = j.campaign_id
                JOIN job_artifacts a ON a.job_id = j.id AND a.attempt = j.attempt
                WHERE cp.domain_id = \(domain) AND j.state = 'succeeded' AND j.kind = 'adapt'
                """).rows
            var sums: [String: (shape: [Int], values: [Double])] = [:]
            var weightTotal = 0.0
            var devices = 0
            for row in rows {
                guard let tensors = try? SafeTensors.decode(try row.decode("content", as: [UInt8].self)).tensors else { continue }
                let w = Double(max(1, try row.decode("samples", as: Int.self)))
                // Only artifacts with the same tensors as the first one are averaged.
                if let first = sums.first, tensors.count != sums.count || tensors[first.key]?.shape != first.value.shape { continue }
                var ok = true
                for (name, t) in tensors {
                    guard let floats = try? t.floats() else { ok = false; break }
                    if sums[name] == nil { sums[name] = (t.shape, [Double](repeating: 0, count: floats.count)) }
                    guard sums[name]!.shape == t.shape else { ok = false; break }
                    for i in floats.indices { sums[name]!.values[i] += w * Double(floats[i]) }
                }
                if ok { weightTotal += w; devices += 1 }
            }
            guard devices > 0, weightTotal > 0 else { return nil }
            let averaged = sums.mapValues { SafeTensor(floats: $0.values.map { Float($0 / weightTotal) }, shape: $0.shape) }
            let bytes = SafeTensors.encode(averaged, metadata: ["devices": String(devices), "samples": String(Int(weightTotal))])
            let version = try c.query("SELECT COALESCE(max(version), 0) + 1 AS v FROM domain_adapters WHERE domain_id = \(domain)")
                .rows[0].decode("v", as: Int.self)
            try c.query("""
                INSERT INTO domain_adapters (domain_id, version, sha256, content, device_count, sample_count, created_at)
                VALUES (\(domain), \(version), \(Secrets.sha256(bytes)), \(bytes), \(devices), \(Int(weightTotal)), \(now))
                """)
            return version
        }
    }

    /// The newest aggregated adapter of a domain: (version, sha256, bytes).
    func latest(domain: UUID) throws -> (version: Int, sha256: [UInt8], content: [UInt8])? {
        guard let row = try pool.query("""
            SELECT version, sha256, content FROM domain_adapters WHERE domain_id = \(domain) ORDER BY version DESC LIMIT 1
            """).rows.first else { return nil }
        return (try row.decode("version", as: Int.self), try row.decode("sha256", as: [UInt8].self), try row.decode("content", as: [UInt8].self))
    }
}
