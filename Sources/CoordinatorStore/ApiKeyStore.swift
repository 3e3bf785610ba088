import FleetAPI
import Foundation
import PostgresClient

/// SQL for `api_keys`: operator credentials with a role, kept as SHA-256 digests only.
package struct ApiKeyStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    static let columns = "id, name, role, created_at, expires_at, revoked_at"

    package func insert(id: UUID, name: String, role: Role, keyDigest: [UInt8], expiresAt: Date?, now: Date) throws -> ApiKeyView {
        try Self.decode(try pool.query("""
            INSERT INTO api_keys (id, name, role, key_sha256, created_at, expires_at)
            VALUES (\(id), \(name), \(role.rawValue), \(keyDigest), \(now), \(expiresAt))
            RETURNING \(unsafeRaw: Self.columns)
            """).rows[0])
    }

    /// Keyset pagination by id.
    package func list(limit: Int, after: UUID?) throws -> Page<ApiKeyView> {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM api_keys WHERE true"
        if let after { q.append(" AND id > \(after)") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let keys = try pool.query(q).rows.map(Self.decode)
        let page = Array(keys.prefix(limit))
        return Page(items: page, next: keys.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    /// Revokes the key (already revoked counts as done); false when there is no such key.
    package func revoke(_ id: UUID, now: Date) throws -> Bool {
        try pool.query("""
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, \(now)) WHERE id = \(id) RETURNING id
            """).rows.isEmpty == false
    }

    package enum Lookup: Equatable {
        case active(ApiKeyView)
        case expired
        case revoked
        case unknown
    }

    /// The key with this digest and whether it may be used now (expiry by the database's clock).
    package func authenticate(keyDigest: [UInt8]) throws -> Lookup {
        guard let row = try pool.query("""
            SELECT \(unsafeRaw: Self.columns), (expires_at IS NOT NULL AND expires_at <= now()) AS expired
            FROM api_keys WHERE key_sha256 = \(keyDigest)
            """).rows.first else { return .unknown }
        let key = try Self.decode(row)
        if key.revokedAt != nil { return .revoked }
        if try row.decode("expired", as: Bool.self) { return .expired }
        return .active(key)
    }

    static func decode(_ row: PostgresRow) throws -> ApiKeyView {
        ApiKeyView(id: try row.decode("id", as: UUID.self), name: try row.decode("name", as: String.self),
                   role: try row.decodeEnum("role", as: Role.self), createdAt: try row.decode("created_at", as: Date.self),
                   expiresAt: try row.decode("expires_at", as: Date?.self), revokedAt: try row.decode("revoked_at", as: Date?.self))
    }
}
