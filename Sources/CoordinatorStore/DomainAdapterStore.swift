import Foundation
import PostgresClient

/// SQL for `domain_adapters`: each domain's aggregated adapter, one row per version (safetensors bytes and the
/// devices and samples folded into it). `AdapterAggregator` holds the fold; this store holds its rows.
package struct DomainAdapterStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// One version of a domain's adapter.
    package struct Version: Sendable {
        package let version: Int
        package let sha256: [UInt8]
        package let content: [UInt8]
        package let deviceCount: Int
        package let sampleCount: Int
    }

    /// Serialises the folds of one domain until the caller's transaction ends.
    package func lock(domain: UUID, on c: PostgresConnection) throws {
        try c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(domain.uuidString), 2))")
    }

    /// The newest version of a domain's adapter, on the caller's connection (or a pool connection).
    package func newest(domain: UUID, on c: PostgresConnection? = nil) throws -> Version? {
        let q: PostgresQuery = """
            SELECT version, sha256, content, device_count, sample_count FROM domain_adapters WHERE domain_id = \(domain)
            ORDER BY version DESC LIMIT 1
            """
        guard let row = try (c.map { try $0.query(q) } ?? pool.query(q)).rows.first else { return nil }
        return try Self.decode(row)
    }

    /// One version of a domain's adapter (a config with `aggregated` adapters names it).
    package func version(domain: UUID, version: Int, on c: PostgresConnection? = nil) throws -> Version? {
        let q: PostgresQuery = """
            SELECT version, sha256, content, device_count, sample_count FROM domain_adapters WHERE domain_id = \(domain) AND version = \(version)
            """
        guard let row = try (c.map { try $0.query(q) } ?? pool.query(q)).rows.first else { return nil }
        return try Self.decode(row)
    }

    private static func decode(_ row: PostgresRow) throws -> Version {
        Version(version: try row.decode("version", as: Int.self), sha256: try row.decode("sha256", as: [UInt8].self),
                content: try row.decode("content", as: [UInt8].self), deviceCount: try row.decode("device_count", as: Int.self),
                sampleCount: try row.decode("sample_count", as: Int.self))
    }

    /// Writes a new version, in the caller's transaction (which holds `lock(domain:on:)`).
    package func insert(domain: UUID, version: Int, sha256: [UInt8], content: [UInt8], deviceCount: Int, sampleCount: Int,
                now: Date, on c: PostgresConnection) throws {
        try c.query("""
            INSERT INTO domain_adapters (domain_id, version, sha256, content, device_count, sample_count, created_at)
            VALUES (\(domain), \(version), \(sha256), \(content), \(deviceCount), \(sampleCount), \(now))
            """)
    }

    /// Newest version number per domain.
    package func latestVersions(_ domains: [UUID], on c: PostgresConnection) throws -> [UUID: Int] {
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
