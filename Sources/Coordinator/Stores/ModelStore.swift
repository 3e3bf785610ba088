import FleetAPI
import Foundation
import PostgresClient

/// SQL for `models` and their content-addressed package bytes in `model_blobs`.
struct ModelStore: Sendable {
    let pool: PostgresPool

    struct Row: Sendable {
        let id: UUID
        let name: String
        let sha256: [UInt8]
        let sizeBytes: Int
        let manifestJSON: String
        let combinationCount: Int
        let createdAt: Date
    }

    enum InsertOutcome {
        case created(Row)
        case existing(Row)
    }

    /// Stores a verified package; the same bytes uploaded again answer with the model already stored.
    func insert(id: UUID, name: String, sha256: [UInt8], content: [UInt8], manifestJSON: String, combinationCount: Int,
                now: Date) throws -> InsertOutcome {
        try pool.withTransaction { c in
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(Secrets.hex(sha256)), 1))")
            if let existing = try c.query("SELECT \(unsafeRaw: Self.columns) FROM models WHERE package_sha256 = \(sha256)").rows.first {
                return .existing(try Self.decode(existing))
            }
            try c.query("""
                INSERT INTO model_blobs (sha256, size_bytes, content, created_at) VALUES (\(sha256), \(content.count), \(content), \(now))
                ON CONFLICT (sha256) DO NOTHING
                """)
            let row = try c.query("""
                INSERT INTO models (id, name, package_sha256, size_bytes, manifest, combination_count, created_at)
                VALUES (\(id), \(name), \(sha256), \(content.count), \(manifestJSON)::jsonb, \(combinationCount), \(now))
                RETURNING \(unsafeRaw: Self.columns)
                """).rows[0]
            return .created(try Self.decode(row))
        }
    }

    static let columns = "id, name, package_sha256, size_bytes, manifest::text AS manifest, combination_count, created_at"

    func find(_ id: UUID) throws -> Row? {
        try pool.query("SELECT \(unsafeRaw: Self.columns) FROM models WHERE id = \(id)").rows.first.map(Self.decode)
    }

    func latest() throws -> Row? {
        try pool.query("SELECT \(unsafeRaw: Self.columns) FROM models ORDER BY created_at DESC, id DESC LIMIT 1").rows.first.map(Self.decode)
    }

    func list(limit: Int, after: UUID?) throws -> (rows: [Row], next: String?) {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM models WHERE true"
        if let after { q.append(" AND id > \(after)") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let rows = try pool.query(q).rows.map(Self.decode)
        let page = Array(rows.prefix(limit))
        return (page, rows.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    func content(sha256: [UInt8]) throws -> [UInt8]? {
        try pool.query("SELECT content FROM model_blobs WHERE sha256 = \(sha256)").rows.first?.decode("content", as: [UInt8].self)
    }

    static func decode(_ row: PostgresRow) throws -> Row {
        Row(id: try row.decode("id", as: UUID.self), name: try row.decode("name", as: String.self),
            sha256: try row.decode("package_sha256", as: [UInt8].self), sizeBytes: try row.decode("size_bytes", as: Int.self),
            manifestJSON: try row.decode("manifest", as: String.self),
            combinationCount: try row.decode("combination_count", as: Int.self),
            createdAt: try row.decode("created_at", as: Date.self))
    }
}
