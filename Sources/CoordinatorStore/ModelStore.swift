import FleetAPI
import Foundation
import PostgresClient

/// SQL for `models` and their content-addressed package bytes in `model_blobs`.
package struct ModelStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package struct Row: Sendable {
        package let id: UUID
        package let name: String
        package let sha256: [UInt8]
        package let sizeBytes: Int
        package let manifestJSON: String
        package let combinationCount: Int
        package let createdAt: Date
        /// Set once the model is deprecated: no device is newly planned or released onto it.
        package let deprecatedAt: Date?
        /// Rises by one per publish of `name`, assigned by the database (migration 0008's trigger).
        package let version: Int
        package let tags: [String]
    }

    package enum InsertOutcome {
        case created(Row)
        case existing(Row)
    }

    /// Stores a verified package; the same bytes uploaded again answer with the model already stored.
    package func insert(id: UUID, name: String, sha256: [UInt8], content: [UInt8], manifestJSON: String, planningSpaceJSON: String?,
                combinationCount: Int, tags: [String] = [], now: Date) throws -> InsertOutcome {
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
                INSERT INTO models (id, name, package_sha256, size_bytes, manifest, planning_space, combination_count, tags, created_at)
                VALUES (\(id), \(name), \(sha256), \(content.count), \(manifestJSON)::jsonb, \(planningSpaceJSON)::jsonb,
                        \(combinationCount), \(try WireJSON.string(tags))::jsonb, \(now))
                RETURNING \(unsafeRaw: Self.columns)
                """).rows[0]
            return .created(try Self.decode(row))
        }
    }

    package static let columns = "id, name, package_sha256, size_bytes, manifest::text AS manifest, combination_count, created_at, deprecated_at, version, tags::text AS tags"

    /// Whether a model with this id is published, read in the caller's transaction (a campaign being created).
    package func exists(_ id: UUID, on c: PostgresConnection) throws -> Bool {
        !(try c.query("SELECT 1 FROM models WHERE id = \(id)").rows.isEmpty)
    }

    /// A model and whether it has a planning space (an elastic package), read in the caller's transaction.
    package func findPlannable(_ id: UUID, on c: PostgresConnection) throws -> (row: Row, plannable: Bool)? {
        guard let r = try c.query("""
            SELECT \(unsafeRaw: Self.columns), planning_space IS NOT NULL AS plannable FROM models WHERE id = \(id)
            """).rows.first else { return nil }
        return (try Self.decode(r), try r.decode("plannable", as: Bool.self))
    }

    package func find(_ id: UUID) throws -> Row? {
        try pool.query("SELECT \(unsafeRaw: Self.columns) FROM models WHERE id = \(id)").rows.first.map(Self.decode)
    }

    package func latest() throws -> Row? {
        try pool.query("SELECT \(unsafeRaw: Self.columns) FROM models WHERE deprecated_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1").rows.first.map(Self.decode)
    }

    /// Models in id order after the cursor; with `name`, only that name's versions.
    package func list(limit: Int, after: UUID?, name: String? = nil) throws -> (rows: [Row], next: String?) {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM models WHERE true"
        if let name { q.append(" AND name = \(name)") }
        if let after { q.append(" AND id > \(after)") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let rows = try pool.query(q).rows.map(Self.decode)
        let page = Array(rows.prefix(limit))
        return (page, rows.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    package func content(sha256: [UInt8]) throws -> [UInt8]? {
        try pool.query("SELECT content FROM model_blobs WHERE sha256 = \(sha256)").rows.first?.decode("content", as: [UInt8].self)
    }

    package static func decode(_ row: PostgresRow) throws -> Row {
        Row(id: try row.decode("id", as: UUID.self), name: try row.decode("name", as: String.self),
            sha256: try row.decode("package_sha256", as: [UInt8].self), sizeBytes: try row.decode("size_bytes", as: Int.self),
            manifestJSON: try row.decode("manifest", as: String.self),
            combinationCount: try row.decode("combination_count", as: Int.self),
            createdAt: try row.decode("created_at", as: Date.self),
            deprecatedAt: try row.decode("deprecated_at", as: Date?.self),
            version: try row.decode("version", as: Int.self),
            tags: try WireJSON.decode([String].self, from: try row.decode("tags", as: String.self)))
    }

    /// The newest models that can be planned with (elastic packages, not deprecated), newest first: the planner
    /// takes the first one it can plan with. Cheap enough to ask on every maintenance tick.
    package func plannableCandidateIDs(limit: Int) throws -> [UUID] {
        try pool.query("""
            SELECT id FROM models WHERE planning_space IS NOT NULL AND deprecated_at IS NULL
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """).rows.map { try $0.decode("id", as: UUID.self) }
    }

    /// Marks a model deprecated (once: a second call keeps the first time). nil when there is no such model.
    package func deprecate(_ id: UUID, now: Date) throws -> Row? {
        try pool.query("""
            UPDATE models SET deprecated_at = COALESCE(deprecated_at, \(now)) WHERE id = \(id) RETURNING \(unsafeRaw: Self.columns)
            """).rows.first.map(Self.decode)
    }

    package enum DeleteOutcome {
        case deleted
        case notFound
        /// What still refers to the model: domains (and so campaigns and jobs) and device configs.
        case inUse(domains: Int, configs: Int)
    }

    /// Deletes a model nothing refers to, with its measured latencies and its package bytes, in one transaction.
    /// A domain or config written concurrently either sees the model gone (its foreign key fails) or makes this
    /// delete fail on the foreign key, answered as in use.
    package func delete(_ id: UUID) throws -> DeleteOutcome {
        do {
            return try pool.withTransaction { c in
                guard let row = try c.query("SELECT package_sha256 FROM models WHERE id = \(id) FOR UPDATE").rows.first else { return .notFound }
                let sha = try row.decode("package_sha256", as: [UInt8].self)
                let refs = try c.query("""
                    SELECT (SELECT count(*) FROM domains WHERE model_id = \(id)) AS domains,
                           (SELECT count(*) FROM device_configs WHERE model_id = \(id)) AS configs
                    """).rows[0]
                let domains = try refs.decode("domains", as: Int.self), configs = try refs.decode("configs", as: Int.self)
                if domains > 0 || configs > 0 { return .inUse(domains: domains, configs: configs) }
                try variantLatencies.deleteAll(model: id, on: c)
                try c.query("DELETE FROM models WHERE id = \(id)")
                try c.query("DELETE FROM model_blobs WHERE sha256 = \(sha) AND NOT EXISTS (SELECT 1 FROM models WHERE package_sha256 = \(sha))")
                return .deleted
            }
        } catch let error as PostgresError where error.sqlState == "23503" {
            return .inUse(domains: 0, configs: 0)
        }
    }

    /// A model's package manifest (JSON text), on `c` when given (a caller inside a transaction must not wait for a
    /// second connection); nil when there is no such model or no manifest.
    package func manifest(_ id: UUID, on c: PostgresConnection? = nil) throws -> String? {
        let q: PostgresQuery = "SELECT manifest::text AS manifest FROM models WHERE id = \(id)"
        return try (c.map { try $0.query(q) } ?? pool.query(q)).rows.first?.decode("manifest", as: String?.self)
    }

    package func planningSpace(_ id: UUID) throws -> String? {
        try pool.query("SELECT planning_space::text AS space FROM models WHERE id = \(id)").rows.first?.decode("space", as: String?.self)
    }
}
