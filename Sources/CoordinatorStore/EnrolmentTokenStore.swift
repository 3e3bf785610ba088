import FleetAPI
import Foundation
import PostgresClient

/// SQL for `enrolment_tokens`: what a device enrols itself with (labels, expiry, uses), kept as digests only.
package struct EnrolmentTokenStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    static let columns = "id, labels::text AS labels, expires_at, max_uses, uses, created_at, revoked_at"

    package func insert(id: UUID, labels: [String: String], tokenDigest: [UInt8], expiresAt: Date, maxUses: Int?, now: Date) throws -> EnrolmentTokenView {
        try Self.decode(try pool.query("""
            INSERT INTO enrolment_tokens (id, labels, token_sha256, expires_at, max_uses, created_at)
            VALUES (\(id), \(try WireJSON.string(labels))::jsonb, \(tokenDigest), \(expiresAt), \(maxUses), \(now))
            RETURNING \(unsafeRaw: Self.columns)
            """).rows[0])
    }

    package func list(limit: Int, after: UUID?) throws -> Page<EnrolmentTokenView> {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM enrolment_tokens WHERE true"
        if let after { q.append(" AND id > \(after)") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let tokens = try pool.query(q).rows.map(Self.decode)
        let page = Array(tokens.prefix(limit))
        return Page(items: page, next: tokens.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    /// The token after revoking it (already revoked stays as it was); nil when there is no such token.
    package func revoke(_ id: UUID, now: Date) throws -> EnrolmentTokenView? {
        try pool.query("""
            UPDATE enrolment_tokens SET revoked_at = coalesce(revoked_at, \(now)) WHERE id = \(id)
            RETURNING \(unsafeRaw: Self.columns)
            """).rows.first.map(Self.decode)
    }

    package enum Lookup: Equatable {
        case usable(id: UUID)
        case expired
        case usedUp
        case revoked
        case unknown
    }

    /// Whether the token may enrol a device now (expiry by the database's clock); changes nothing.
    package func check(tokenDigest: [UInt8]) throws -> Lookup {
        guard let row = try pool.query("""
            SELECT id, revoked_at IS NOT NULL AS revoked, expires_at <= now() AS expired,
                   (max_uses IS NOT NULL AND uses >= max_uses) AS used_up
            FROM enrolment_tokens WHERE token_sha256 = \(tokenDigest)
            """).rows.first else { return .unknown }
        if try row.decode("revoked", as: Bool.self) { return .revoked }
        if try row.decode("expired", as: Bool.self) { return .expired }
        if try row.decode("used_up", as: Bool.self) { return .usedUp }
        return .usable(id: try row.decode("id", as: UUID.self))
    }

    /// Spends one use of the token in the caller's transaction and returns its labels; nil when it can no longer
    /// be used (revoked, expired or used up since it was checked).
    package func consume(_ id: UUID, on c: PostgresConnection) throws -> [String: String]? {
        guard let row = try c.query("""
            UPDATE enrolment_tokens SET uses = uses + 1
            WHERE id = \(id) AND revoked_at IS NULL AND expires_at > now() AND (max_uses IS NULL OR uses < max_uses)
            RETURNING labels::text AS labels
            """).rows.first else { return nil }
        return try WireJSON.decode([String: String].self, from: try row.decode("labels", as: String.self))
    }

    static func decode(_ row: PostgresRow) throws -> EnrolmentTokenView {
        EnrolmentTokenView(id: try row.decode("id", as: UUID.self),
                           labels: try WireJSON.decode([String: String].self, from: try row.decode("labels", as: String.self)),
                           expiresAt: try row.decode("expires_at", as: Date.self), maxUses: try row.decode("max_uses", as: Int?.self),
                           uses: try row.decode("uses", as: Int.self), createdAt: try row.decode("created_at", as: Date.self),
                           revokedAt: try row.decode("revoked_at", as: Date?.self))
    }
}
