import FleetAPI
import Foundation
import PostgresClient

/// SQL for `device_configs`: every config a device was given, newest = current. A new version is written only
/// when the decision changes (`PlanDecision.sameConfig`), so re-plans that change nothing leave no trace.
/// Single-device writes are serialised by a per-device advisory lock; fleet writes take no per-device locks
/// (thousands would overflow the lock table) and are instead conditional on the version they compared with.
package struct ConfigStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package static let columns = "device_id, version, decision::text AS decision, trigger, created_at"

    package func current(_ device: UUID) throws -> DeviceConfigView? {
        try pool.withConnection { try current(device, on: $0) }
    }

    /// Newest first; `next` is the cursor (the last version returned) when older ones remain.
    package func history(_ device: UUID, limit: Int, before: Int?) throws -> (items: [DeviceConfigView], next: String?) {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM device_configs WHERE device_id = \(device)"
        if let before { q.append(" AND version < \(before)") }
        q.append(" ORDER BY version DESC LIMIT \(limit + 1)")
        let rows = try pool.query(q).rows.map(Self.decode)
        let page = Array(rows.prefix(limit))
        return (page, rows.count > limit ? page.last.map { String($0.version) } : nil)
    }

    /// Runs `body` in a transaction that holds the device's planning lock. A re-plan reads its inputs and writes
    /// its config under this lock, so two triggers of one device cannot interleave: the re-plan that takes the lock
    /// last reads the newest state, and an older reading can never be written after a newer one.
    package func withPlanningLock<T>(_ device: UUID, _ body: (PostgresConnection) throws -> T) throws -> T {
        try pool.withTransaction { c in
            try c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(device.uuidString), 3))")
            return try body(c)
        }
    }

    package func current(_ device: UUID, on c: PostgresConnection) throws -> DeviceConfigView? {
        try c.query("""
            SELECT \(unsafeRaw: Self.columns) FROM device_configs WHERE device_id = \(device) ORDER BY version DESC LIMIT 1
            """).rows.first.map(Self.decode)
    }

    /// One version of a device's config, in the caller's transaction (a rollback restoring it).
    package func version(_ device: UUID, _ version: Int, on c: PostgresConnection) throws -> DeviceConfigView? {
        try c.query("""
            SELECT \(unsafeRaw: Self.columns) FROM device_configs WHERE device_id = \(device) AND version = \(version)
            """).rows.first.map(Self.decode)
    }

    package enum AppendOutcome {
        case created(DeviceConfigView)
        case unchanged(DeviceConfigView)
        /// A fleet write (which does not take per-device locks) took the next version number meanwhile.
        case lostRace
    }

    /// Writes `decision` as the version after `current` unless it is the same config. Call under
    /// `withPlanningLock` with `current` read there.
    package func append(_ device: UUID, after current: DeviceConfigView?, decision: PlanDecision, trigger: String, now: Date,
                on c: PostgresConnection) throws -> AppendOutcome {
        if let current, current.decision.sameConfig(as: decision) { return .unchanged(current) }
        guard let row = try c.query("""
            INSERT INTO device_configs (device_id, version, model_id, decision, trigger, created_at)
            VALUES (\(device), \((current?.version ?? 0) + 1), \(decision.modelID), \(try WireJSON.string(decision))::jsonb, \(trigger), \(now))
            ON CONFLICT (device_id, version) DO NOTHING
            RETURNING \(unsafeRaw: Self.columns)
            """).rows.first else { return .lostRace }
        return .created(try Self.decode(row))
    }

    /// Active devices that have no config at all, in id order after `after`: what `Replanner.catchUp` plans once a
    /// model they can be planned with exists (devices with a config keep their model until a release moves them).
    package func devicesWithoutAnyConfig(after: UUID?, limit: Int) throws -> [UUID] {
        var q: PostgresQuery = """
            SELECT d.id FROM devices d WHERE d.status = 'active'
              AND NOT EXISTS (SELECT 1 FROM device_configs c WHERE c.device_id = d.id)
            """
        if let after { q.append(" AND d.id > \(after)") }
        q.append(" ORDER BY d.id LIMIT \(limit)")
        return try pool.query(q).rows.map { try $0.decode("id", as: UUID.self) }
    }

    /// The model each device's current config names (devices without a config are absent).
    package func currentModels(_ devices: [UUID]) throws -> [UUID: UUID] {
        guard !devices.isEmpty else { return [:] }
        var out: [UUID: UUID] = [:]
        for row in try pool.query("""
            SELECT DISTINCT ON (device_id) device_id, (decision->>'model_id')::uuid AS model
            FROM device_configs WHERE device_id = ANY(\(PostgresArray(devices))) ORDER BY device_id, version DESC
            """).rows {
            out[try row.decode("device_id", as: UUID.self)] = try row.decode("model", as: UUID.self)
        }
        return out
    }

    /// Current version and decision identity (`PlanDecision.identity`, built here in SQL) of many devices in one
    /// query, so a fleet re-plan compares decisions without decoding them. UUIDs compare in lower case (the wire's
    /// case; decisions stored before it was were upper case).
    package func currentIdentities(_ devices: [UUID]) throws -> [UUID: (version: Int, identity: String)] {
        guard !devices.isEmpty else { return [:] }
        var out: [UUID: (version: Int, identity: String)] = [:]
        out.reserveCapacity(devices.count)
        for row in try pool.query("""
            SELECT DISTINCT ON (device_id) device_id, version,
                   lower(decision->>'model_id') || '|' ||
                   COALESCE((SELECT string_agg(v->>'variant', '/' ORDER BY n) FROM jsonb_array_elements(decision->'variants') WITH ORDINALITY AS t(v, n)), '') || '|' ||
                   COALESCE(decision->'partition'->>'split_after_block', '') || '|' ||
                   lower(COALESCE(decision->'adapters'->>'domain_id', '')) || ':' || COALESCE(decision->'adapters'->>'source', '') || ':' ||
                   COALESCE(decision->'adapters'->>'version', '') || '|' || (decision->>'feasible') AS identity
            FROM device_configs WHERE device_id = ANY(\(PostgresArray(devices))) ORDER BY device_id, version DESC
            """).rows {
            out[try row.decode("device_id", as: UUID.self)] = (try row.decode("version", as: Int.self), try row.decode("identity", as: String.self))
        }
        return out
    }

    /// Appends a version for each device whose current version is still `expected` (the one its decision was
    /// compared with): the rows go in with one COPY into a temporary table and one INSERT … SELECT from it (never a
    /// loop of INSERTs). Returns the devices written; the others were re-planned by someone else after the fleet was
    /// read, so this older reading must not land on top.
    package func recordMany(_ items: [(device: UUID, expected: Int, decisionJSON: String)], trigger: String, now: Date) throws -> Set<UUID> {
        guard !items.isEmpty else { return [] }
        return try pool.withTransaction { c in
            try c.simpleQuery("""
                CREATE TEMPORARY TABLE replan_input (device_id uuid NOT NULL, expected integer NOT NULL, decision jsonb NOT NULL)
                ON COMMIT DROP
                """)
            _ = try c.copyIn(table: "replan_input", columns: ["device_id", "expected", "decision"], rows: items.map {
                [$0.device.uuidString.lowercased(), String($0.expected), $0.decisionJSON]
            })
            let rows = try c.query("""
                INSERT INTO device_configs (device_id, version, model_id, decision, trigger, created_at)
                SELECT i.device_id, i.expected + 1, (i.decision->>'model_id')::uuid, i.decision, \(trigger), \(now)
                FROM replan_input i
                LEFT JOIN LATERAL (SELECT max(version) AS version FROM device_configs d WHERE d.device_id = i.device_id) cur ON true
                WHERE COALESCE(cur.version, 0) = i.expected
                ON CONFLICT (device_id, version) DO NOTHING
                RETURNING device_id
                """).rows
            return Set(try rows.map { try $0.decode("device_id", as: UUID.self) })
        }
    }

    package static func decode(_ row: PostgresRow) throws -> DeviceConfigView {
        DeviceConfigView(deviceID: try row.decode("device_id", as: UUID.self), version: try row.decode("version", as: Int.self),
                         decision: try WireJSON.decode(PlanDecision.self, from: try row.decode("decision", as: String.self)),
                         trigger: try row.decode("trigger", as: String.self), createdAt: try row.decode("created_at", as: Date.self))
    }
}
