import FleetAPI
import Foundation
import PostgresClient

/// SQL for `triggers` and the domains they created (`trigger_firings`).
package struct TriggerStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    static let columns = """
        t.id, t.spec::text AS spec, t.enabled, t.version, t.condition_since, t.last_fired_at, t.fired_count, t.created_at, t.updated_at,
        (SELECT f.domain_id FROM trigger_firings f WHERE f.trigger_id = t.id ORDER BY f.fired_at DESC, f.domain_id LIMIT 1) AS last_domain_id
        """

    /// Writes a trigger in the caller's transaction (the `Idempotency-Key` record commits with it).
    package func insert(id: UUID, request: TriggerRequest, now: Date, on c: PostgresConnection) throws -> TriggerView {
        var spec = request
        spec.cooldownS = request.effectiveCooldownS
        spec.enabled = nil
        try c.query("""
            INSERT INTO triggers (id, name, spec, enabled, created_at, updated_at)
            VALUES (\(id), \(request.name), \(try WireJSON.string(spec))::jsonb, \(request.enabled ?? true), \(now), \(now))
            """)
        guard let view = try find(id, on: c) else {
            throw PostgresError(kind: .decode, message: "trigger \(id.uuidString.lowercased()) is not readable in the transaction that wrote it")
        }
        return view
    }

    package func find(_ id: UUID, on c: PostgresConnection? = nil) throws -> TriggerView? {
        let q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM triggers t WHERE t.id = \(id)"
        return try (c.map { try $0.query(q) } ?? pool.query(q)).rows.first.map(Self.decode)
    }

    /// Keyset pagination by id.
    package func list(limit: Int, after: UUID?) throws -> Page<TriggerView> {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM triggers t WHERE true"
        if let after { q.append(" AND t.id > \(after)") }
        q.append(" ORDER BY t.id LIMIT \(limit + 1)")
        let rows = try pool.query(q).rows.map(Self.decode)
        let page = Array(rows.prefix(limit))
        return Page(items: page, next: rows.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    /// Every enabled trigger, in id order (what each evaluation looks at).
    package func enabled() throws -> [TriggerView] {
        try pool.query("SELECT \(unsafeRaw: Self.columns) FROM triggers t WHERE t.enabled ORDER BY t.id").rows.map(Self.decode)
    }

    package enum ChangeOutcome: Equatable {
        case changed(TriggerView)
        case deleted
        case notFound
        case versionMismatch(current: Int)
    }

    /// Replaces the spec and enabled flag of a trigger still at `expectedVersion` (nil: any), bumping its version. A
    /// changed condition starts its `for_s` again.
    package func update(_ id: UUID, request: TriggerRequest, expectedVersion: Int?, now: Date) throws -> ChangeOutcome {
        try pool.withTransaction { c in
            // Locked first, so the version compared is the one the UPDATE replaces.
            try c.query("SELECT id FROM triggers WHERE id = \(id) FOR UPDATE")
            guard let current = try find(id, on: c) else { return .notFound }
            if let expectedVersion, expectedVersion != current.version { return .versionMismatch(current: current.version) }
            var spec = request
            spec.cooldownS = request.effectiveCooldownS
            spec.enabled = nil
            let conditionChanged = spec.condition != current.spec.condition || spec.selector != current.spec.selector
            try c.query("""
                UPDATE triggers SET name = \(request.name), spec = \(try WireJSON.string(spec))::jsonb, enabled = \(request.enabled ?? current.enabled),
                       version = version + 1, updated_at = \(now),
                       condition_since = CASE WHEN \(conditionChanged) OR NOT \(request.enabled ?? current.enabled) THEN NULL ELSE condition_since END
                WHERE id = \(id) AND version = \(current.version)
                """)
            guard let view = try find(id, on: c) else { return .notFound }
            return .changed(view)
        }
    }

    /// Deletes a trigger still at `expectedVersion` (nil: any); the domains it created keep their origin.
    package func delete(_ id: UUID, expectedVersion: Int?) throws -> ChangeOutcome {
        let result = try pool.query("""
            WITH gone AS (DELETE FROM triggers WHERE id = \(id) AND (\(expectedVersion)::integer IS NULL OR version = \(expectedVersion)) RETURNING id)
            SELECT (SELECT count(*) FROM gone)::bigint AS gone, (SELECT version FROM triggers WHERE id = \(id)) AS version
            """)
        let row = result.rows[0]
        if try row.decode("gone", as: Int.self) > 0 { return .deleted }
        guard let version = try row.decode("version", as: Int?.self) else { return .notFound }
        return .versionMismatch(current: version)
    }

    /// Records whether the condition holds now: since when it has held (kept while it holds, set now when it starts
    /// to), or nil when it does not hold (or the trigger is gone or disabled).
    package func markCondition(_ id: UUID, holds: Bool, now: Date) throws -> Date? {
        try pool.query("""
            UPDATE triggers SET condition_since = CASE WHEN \(holds) THEN COALESCE(condition_since, \(now)) ELSE NULL END
            WHERE id = \(id) AND enabled
            RETURNING condition_since
            """).rows.first?.decode("condition_since", as: Date?.self)
    }

    /// Claims a firing in the caller's transaction: true for exactly one caller while the trigger is enabled, its
    /// condition has held for `for_s` and its cooldown has passed. The row stays locked until that transaction
    /// ends, so a concurrent claim on another replica waits, then sees the new `last_fired_at` and gets false.
    package func claimFiring(_ id: UUID, now: Date, on c: PostgresConnection) throws -> Bool {
        try !c.query("""
            UPDATE triggers SET last_fired_at = \(now), fired_count = fired_count + 1, condition_since = NULL
            WHERE id = \(id) AND enabled AND condition_since IS NOT NULL
              AND condition_since <= \(now) - make_interval(secs => COALESCE((spec->'condition'->>'for_s')::integer, 0))
              AND (last_fired_at IS NULL OR last_fired_at <= \(now) - make_interval(secs => (spec->>'cooldown_s')::integer))
            RETURNING id
            """).rows.isEmpty
    }

    /// Records the domain a firing created (in the claiming transaction).
    package func recordFiring(trigger: UUID, domain: UUID, campaign: UUID, devices: [UUID], now: Date, on c: PostgresConnection) throws {
        try c.query("""
            INSERT INTO trigger_firings (domain_id, trigger_id, campaign_id, device_ids, fired_at)
            VALUES (\(domain), \(trigger), \(campaign), \(try WireJSON.string(devices))::jsonb, \(now))
            """)
    }

    /// The trigger firing that created `domain`; nil for a domain an operator posted.
    package func origin(ofDomain domain: UUID) throws -> DomainOrigin? {
        guard let row = try pool.query("""
            SELECT trigger_id, fired_at, device_ids::text AS devices FROM trigger_firings WHERE domain_id = \(domain)
            """).rows.first else { return nil }
        return DomainOrigin(triggerID: try row.decode("trigger_id", as: UUID.self), firedAt: try row.decode("fired_at", as: Date.self),
                            deviceIDs: try WireJSON.decode([UUID].self, from: try row.decode("devices", as: String.self)))
    }

    /// Domains created by triggers, fleet-wide.
    package func firingCount() throws -> Int {
        try pool.query("SELECT count(*)::bigint AS n FROM trigger_firings").rows[0].decode("n", as: Int.self)
    }

    static func decode(_ row: PostgresRow) throws -> TriggerView {
        TriggerView(id: try row.decode("id", as: UUID.self), spec: try WireJSON.decode(TriggerRequest.self, from: try row.decode("spec", as: String.self)),
                    enabled: try row.decode("enabled", as: Bool.self), version: try row.decode("version", as: Int.self),
                    conditionSince: try row.decode("condition_since", as: Date?.self), lastFiredAt: try row.decode("last_fired_at", as: Date?.self),
                    firedCount: try row.decode("fired_count", as: Int.self), lastDomainID: try row.decode("last_domain_id", as: UUID?.self),
                    createdAt: try row.decode("created_at", as: Date.self), updatedAt: try row.decode("updated_at", as: Date.self))
    }
}
