import Foundation
import PostgresClient

/// Remembers the answer of a creating POST per (caller scope, Idempotency-Key), so that a retried request
/// replays the first answer instead of creating twice. The work and the record commit in one transaction,
/// under a transaction-scoped advisory lock on the key, so two concurrent retries cannot both create.
package struct IdempotencyStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package struct StoredAnswer: Sendable {
        package let status: Int
        package let body: [UInt8]

        package init(status: Int, body: [UInt8]) {
            self.status = status
            self.body = body
        }
    }

    package enum Outcome: Sendable {
        case fresh(StoredAnswer)
        case replay(StoredAnswer)
        case keyReused
    }

    /// Runs `create` once per key. `create` returns the answer to store and the answer to send
    /// (they differ when the sent one holds a secret that must not be stored, such as a device token);
    /// on a replay, `replay` turns the stored answer into the one to send.
    package func run(scope: String, key: String, requestBody: [UInt8], now: Date,
             create: (PostgresConnection) throws -> (stored: StoredAnswer, sent: StoredAnswer),
             replay: (PostgresConnection, StoredAnswer) throws -> StoredAnswer) throws -> Outcome {
        // A JSON body is compared by its canonical form (keys sorted, whitespace gone), so the same request with
        // its keys in another order is a retry, not a reused key. Keys stored before by the raw bytes still match.
        let raw = Secrets.sha256(requestBody)
        let digest = CanonicalJSON.bytes(requestBody).map(Secrets.sha256) ?? raw
        return try pool.withTransaction { c in
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(scope + "\u{1F}" + key), 0))")
            if let row = try c.query("""
                SELECT request_sha256, status, response FROM idempotency_keys WHERE scope = \(scope) AND key = \(key)
                """).rows.first {
                let stored = try row.decode("request_sha256", as: [UInt8].self)
                guard stored == digest || stored == raw else { return .keyReused }
                let answer = StoredAnswer(status: try row.decode("status", as: Int.self),
                                          body: try row.decode("response", as: [UInt8].self))
                return .replay(try replay(c, answer))
            }
            let answer = try create(c)
            try c.query("""
                INSERT INTO idempotency_keys (scope, key, request_sha256, status, response, created_at)
                VALUES (\(scope), \(key), \(digest), \(answer.stored.status), \(answer.stored.body), \(now))
                """)
            return .fresh(answer.sent)
        }
    }

    /// The same writes for a request that brought no key: one transaction, nothing remembered.
    package func unkeyed<T>(_ create: (PostgresConnection) throws -> T) throws -> T {
        try pool.withTransaction(create)
    }

    /// Keys older than the retention window are forgotten; a retry after a day is a new request.
    package func purge(olderThan cutoff: Date) throws -> Int {
        try pool.query("DELETE FROM idempotency_keys WHERE created_at < \(cutoff)").affectedRows
    }
}

/// One canonical text per JSON value: objects with sorted keys, no insignificant whitespace, numbers as the
/// value they denote. Two bodies that differ only in key order or spacing canonicalise to the same bytes.
package enum CanonicalJSON {
    package indirect enum Value: Codable, Equatable {
        case null
        case bool(Bool)
        case integer(Int64)
        case number(Double)
        case string(String)
        case array([Value])
        case object([String: Value])

        package init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .integer(i) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([Value].self) { self = .array(a) }
            else { self = .object(try c.decode([String: Value].self)) }
        }

        package func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .null: try c.encodeNil()
            case .bool(let b): try c.encode(b)
            case .integer(let i): try c.encode(i)
            case .number(let d): try c.encode(d)
            case .string(let s): try c.encode(s)
            case .array(let a): try c.encode(a)
            case .object(let o): try c.encode(o)
            }
        }
    }

    /// The canonical bytes of a JSON body, or nil when it is not JSON (such a body is compared as it is).
    package static func bytes(_ body: [UInt8]) -> [UInt8]? {
        guard let value = try? JSONDecoder().decode(Value.self, from: Data(body)) else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map(Array.init)
    }
}
