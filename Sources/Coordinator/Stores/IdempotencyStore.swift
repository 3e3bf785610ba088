import Foundation
import PostgresClient

/// Remembers the answer of a creating POST per (caller scope, Idempotency-Key), so that a retried request
/// replays the first answer instead of creating twice. The work and the record commit in one transaction,
/// under a transaction-scoped advisory lock on the key, so two concurrent retries cannot both create.
struct IdempotencyStore: Sendable {
    let pool: PostgresPool

    struct StoredAnswer: Sendable {
        let status: Int
        let body: [UInt8]
    }

    enum Outcome: Sendable {
        case fresh(StoredAnswer)
        case replay(StoredAnswer)
        case keyReused
    }

    /// Runs `create` once per key. `create` returns the answer to store and the answer to send
    /// (they differ when the sent one holds a secret that must not be stored, such as a device token);
    /// on a replay, `replay` turns the stored answer into the one to send.
    func run(scope: String, key: String, requestBody: [UInt8], now: Date,
             create: (PostgresConnection) throws -> (stored: StoredAnswer, sent: StoredAnswer),
             replay: (PostgresConnection, StoredAnswer) throws -> StoredAnswer) throws -> Outcome {
        let digest = Secrets.sha256(requestBody)
        return try pool.withTransaction { c in
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(scope + "\u{1F}" + key), 0))")
            if let row = try c.query("""
                SELECT request_sha256, status, response FROM idempotency_keys WHERE scope = \(scope) AND key = \(key)
                """).rows.first {
                guard try row.decode("request_sha256", as: [UInt8].self) == digest else { return .keyReused }
                let stored = StoredAnswer(status: try row.decode("status", as: Int.self),
                                          body: try row.decode("response", as: [UInt8].self))
                return .replay(try replay(c, stored))
            }
            let answer = try create(c)
            try c.query("""
                INSERT INTO idempotency_keys (scope, key, request_sha256, status, response, created_at)
                VALUES (\(scope), \(key), \(digest), \(answer.stored.status), \(answer.stored.body), \(now))
                """)
            return .fresh(answer.sent)
        }
    }

    /// Keys older than the retention window are forgotten; a retry after a day is a new request.
    func purge(olderThan cutoff: Date) throws -> Int {
        try pool.query("DELETE FROM idempotency_keys WHERE created_at < \(cutoff)").affectedRows
    }
}
