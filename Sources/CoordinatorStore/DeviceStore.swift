import FleetAPI
import Foundation
import PostgresClient
import Rollout

/// SQL for the `devices` aggregate (devices and their context reports). The only place that knows these tables.
package struct DeviceStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package static let columns = """
        id, name, status, hardware_class, gflops, memory_mb, latency_budget_ms, memory_budget_mb,
        energy_budget_mj, labels::text AS labels, context::text AS context, context_at, version,
        created_at, updated_at, last_seen_at
        """

    package func insert(id: UUID, registration r: DeviceRegistration, tokenDigest: [UInt8], now: Date,
                on connection: PostgresConnection) throws -> Device {
        let contextJSON = try r.context.map(WireJSON.string)
        let contextAt: Date? = r.context == nil ? nil : now
        let result = try connection.query("""
            INSERT INTO devices (id, name, hardware_class, gflops, memory_mb, latency_budget_ms, memory_budget_mb,
                                 energy_budget_mj, labels, context, context_at, token_sha256, created_at, updated_at)
            VALUES (\(id), \(r.name), \(r.hardware.class), \(r.hardware.gflops), \(r.hardware.memoryMB),
                    \(r.constraints.latencyBudgetMs), \(r.constraints.memoryBudgetMB), \(r.constraints.energyBudgetMJ),
                    \(try WireJSON.string(r.labels ?? [:]))::jsonb, \(contextJSON)::jsonb, \(contextAt), \(tokenDigest), \(now), \(now))
            RETURNING \(unsafeRaw: Self.columns)
            """)
        if let contextJSON {
            try connection.query("""
                INSERT INTO device_context_reports (device_id, reported_at, context)
                VALUES (\(id), \(now), \(contextJSON)::jsonb)
                """)
        }
        return try Self.decode(result.rows[0])
    }

    package func find(_ id: UUID) throws -> Device? {
        try pool.withConnection { try find(id, on: $0) }
    }

    package func find(_ id: UUID, on c: PostgresConnection) throws -> Device? {
        try c.query("SELECT \(unsafeRaw: Self.columns) FROM devices WHERE id = \(id)").rows.first.map(Self.decode)
    }

    /// Every active device (for fleet re-plans), in id order.
    /// Active devices, all of them or those among `ids`, in id order.
    package func allActive(ids: [UUID]? = nil) throws -> [Device] {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM devices WHERE status = 'active'"
        if let ids { q.append(" AND id = ANY(\(PostgresArray(ids)))") }
        q.append(" ORDER BY id")
        return try pool.query(q).rows.map(Self.decode)
    }

    /// Keyset pagination by id: stable under concurrent inserts, one index range scan per page.
    package func list(limit: Int, after: UUID?, labels: [String: String]?, status: Device.Status?) throws -> Page<Device> {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM devices WHERE true"
        if let after { q.append(" AND id > \(after)") }
        if let status { q.append(" AND status = \(status.rawValue)") }
        if let labels, !labels.isEmpty { q.append(" AND labels @> \(try WireJSON.string(labels))::jsonb") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let devices = try pool.query(q).rows.map(Self.decode)
        let page = Array(devices.prefix(limit))
        return Page(items: page, next: devices.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    package enum UpdateOutcome {
        case updated(Device)
        case notFound
        case decommissioned
        case versionMismatch(current: Int)
    }

    /// Read-modify-write under a row lock, so a PATCH sees and bumps exactly one version.
    package func update(_ id: UUID, patch: DevicePatch, expectedVersion: Int?, now: Date) throws -> UpdateOutcome {
        try pool.withTransaction { c in
            guard let row = try c.query("SELECT \(unsafeRaw: Self.columns) FROM devices WHERE id = \(id) FOR UPDATE").rows.first else {
                return .notFound
            }
            var device = try Self.decode(row)
            if device.status == .decommissioned { return .decommissioned }
            if let expectedVersion, expectedVersion != device.version { return .versionMismatch(current: device.version) }
            if let name = patch.name { device.name = name }
            if let hardware = patch.hardware { device.hardware = hardware }
            if let constraints = patch.constraints { device.constraints = constraints }
            if let labels = patch.labels { device.labels = labels }
            let result = try c.query("""
                UPDATE devices SET name = \(device.name), hardware_class = \(device.hardware.class),
                       gflops = \(device.hardware.gflops), memory_mb = \(device.hardware.memoryMB),
                       latency_budget_ms = \(device.constraints.latencyBudgetMs),
                       memory_budget_mb = \(device.constraints.memoryBudgetMB),
                       energy_budget_mj = \(device.constraints.energyBudgetMJ),
                       labels = \(try WireJSON.string(device.labels))::jsonb,
                       version = version + 1, updated_at = \(now)
                WHERE id = \(id)
                RETURNING \(unsafeRaw: Self.columns)
                """)
            return .updated(try Self.decode(result.rows[0]))
        }
    }

    package enum DecommissionOutcome: Equatable {
        case decommissioned
        case notFound
        /// `expectedVersion` was given and the device is at another version.
        case versionMismatch(current: Int)
    }

    /// Decommissions: the device stays (history is kept) but its token no longer opens agent routes. Already
    /// decommissioned counts as done. With `expectedVersion`, only a device still at that version changes.
    package func decommission(_ id: UUID, expectedVersion: Int? = nil, now: Date) throws -> DecommissionOutcome {
        let result = try pool.query("""
            WITH changed AS (
                UPDATE devices SET status = 'decommissioned', decommissioned_at = \(now), updated_at = \(now),
                       version = version + 1
                WHERE id = \(id) AND status = 'active' AND (\(expectedVersion)::integer IS NULL OR version = \(expectedVersion))
                RETURNING id)
            SELECT (SELECT count(*) FROM changed)::bigint AS changed, version, status FROM devices WHERE id = \(id)
            """)
        guard let row = result.rows.first else { return .notFound }
        if try row.decode("changed", as: Int.self) > 0 { return .decommissioned }
        let version = try row.decode("version", as: Int.self)
        if let expectedVersion, expectedVersion != version { return .versionMismatch(current: version) }
        return .decommissioned
    }

    package enum TokenLookup: Equatable {
        case active(UUID)
        case decommissioned
        case unknown
    }

    /// Authenticates a device token and records `last_seen_at` in the same round trip.
    package func authenticate(tokenDigest: [UInt8], now: Date) throws -> TokenLookup {
        let result = try pool.query("""
            UPDATE devices SET last_seen_at = \(now)
            WHERE token_sha256 = \(tokenDigest) AND status = 'active'
            RETURNING id
            """)
        if let row = result.rows.first { return .active(try row.decode("id", as: UUID.self)) }
        let known = try pool.query("SELECT status FROM devices WHERE token_sha256 = \(tokenDigest)")
        return known.rows.isEmpty ? .unknown : .decommissioned
    }

    /// Gives an active device a new token (the old one stops working); nil when it is not active.
    package func rotateToken(_ id: UUID, tokenDigest: [UInt8], now: Date, on connection: PostgresConnection) throws -> Device? {
        try connection.query("""
            UPDATE devices SET token_sha256 = \(tokenDigest)
            WHERE id = \(id) AND status = 'active'
            RETURNING \(unsafeRaw: Self.columns)
            """).rows.first.map(Self.decode)
    }

    package func recordContext(_ id: UUID, context: DeviceContext, now: Date) throws -> ReportedContext {
        let json = try WireJSON.string(context)
        try pool.withTransaction { c in
            try c.query("""
                UPDATE devices SET context = \(json)::jsonb, context_at = \(now), last_seen_at = \(now)
                WHERE id = \(id)
                """)
            try c.query("""
                INSERT INTO device_context_reports (device_id, reported_at, context)
                VALUES (\(id), \(now), \(json)::jsonb)
                ON CONFLICT (device_id, reported_at) DO UPDATE SET context = EXCLUDED.context
                """)
        }
        return ReportedContext(context: context, reportedAt: now)
    }

    /// Devices by status, and active devices by hardware class, for the fleet summary.
    package func counts() throws -> (byStatus: [String: Int], activeByClass: [String: Int]) {
        try pool.withConnection { c in
            func counts(_ q: PostgresQuery) throws -> [String: Int] {
                var out: [String: Int] = [:]
                for row in try c.query(q).rows { out[try row.decode("k", as: String.self)] = try row.decode("n", as: Int.self) }
                return out
            }
            return (try counts("SELECT status AS k, count(*)::bigint AS n FROM devices GROUP BY status"),
                    try counts("SELECT hardware_class AS k, count(*)::bigint AS n FROM devices WHERE status = 'active' GROUP BY hardware_class"))
        }
    }

    /// Inserts `count` active phones in one statement (benchmarks of the fan-out and the lease path): device `i` is
    /// named and authenticated by `"\(prefix)\(i)"` (its token), with `labels`.
    package func insertUniformFleet(count: Int, prefix: String, labels: [String: String]) throws {
        try pool.query("""
            INSERT INTO devices (id, name, hardware_class, gflops, memory_mb, latency_budget_ms, memory_budget_mb, labels, token_sha256, created_at, updated_at)
            SELECT gen_random_uuid(), \(prefix)::text || i, 'phone', 5, 2048, 50, 100, \(try WireJSON.string(labels))::jsonb,
                   sha256(convert_to(\(prefix)::text || i, 'UTF8')), now(), now()
            FROM generate_series(1, \(count)) AS i
            """)
    }

    /// Inserts `count` active devices with varied hardware, budgets, batteries and edge links in one statement
    /// (benchmarks of fleet re-planning); device `i` is named `fleet-i`.
    package func insertVariedFleet(count: Int) throws {
        try pool.query("""
            INSERT INTO devices (id, name, hardware_class, gflops, memory_mb, latency_budget_ms, memory_budget_mb, energy_budget_mj,
                                 labels, context, context_at, token_sha256, created_at, updated_at)
            SELECT gen_random_uuid(), 'fleet-' || i, (ARRAY['mcu','raspberry-pi-4','phone','jetson-nano','jetson-orin'])[1 + i % 5],
                   0.2 + (i % 97) * 0.5, 512 + (i % 7) * 512, 1 + (i % 50) * 0.8, 1 + (i % 13) * 4,
                   CASE WHEN i % 3 = 0 THEN 5 + (i % 11) * 10 END, '{}'::jsonb,
                   CASE WHEN i % 4 = 0 THEN jsonb_build_object('edge_server', 'edge', 'bandwidth_mbps', 1 + (i % 50) * 20, 'rtt_ms', 1 + i % 9,
                                                                'battery_pct', i % 100)
                        ELSE jsonb_build_object('battery_pct', i % 100) END,
                   now(), sha256(('fleet-token-' || i)::bytea), now(), now()
            FROM generate_series(1, \(count)) AS i
            """)
    }

    /// A device as a campaign sees it: its battery, its energy budget, and its current config (model, variants,
    /// predicted energy per inference). The rollout plan's view of a device.
    package typealias Target = RolloutPlan.Device

    /// Active devices matching a selector, in id order, with their current config.
    package func targets(labels: [String: String]?, ids: [UUID]?, on c: PostgresConnection) throws -> [Target] {
        var q: PostgresQuery = """
            SELECT d.id, (d.context->>'battery_pct')::float8 AS battery, d.energy_budget_mj AS energy_budget,
                   cfg.decision->>'model_id' AS config_model, (cfg.decision->'variants')::text AS variants,
                   (cfg.decision->'predicted'->>'energy_mj')::float8 AS energy
            FROM devices d
            LEFT JOIN LATERAL (SELECT decision FROM device_configs WHERE device_id = d.id ORDER BY version DESC LIMIT 1) cfg ON true
            WHERE d.status = 'active'
            """
        if let ids { q.append(" AND d.id = ANY(\(PostgresArray(ids)))") }
        if let labels, !labels.isEmpty { q.append(" AND d.labels @> \(try WireJSON.string(labels))::jsonb") }
        q.append(" ORDER BY d.id")
        return try c.query(q).rows.map { row in
            let variants = try row.decode("variants", as: String?.self).flatMap { try? WireJSON.decode([VariantChoice].self, from: $0) } ?? []
            return Target(id: try row.decode("id", as: UUID.self), batteryPct: try row.decode("battery", as: Double?.self),
                          energyBudgetMJ: try row.decode("energy_budget", as: Double?.self),
                          configModelID: try row.decode("config_model", as: String?.self).flatMap(UUID.init(uuidString:)),
                          variants: variants.map(\.variant), predictedEnergyMJ: try row.decode("energy", as: Double?.self))
        }
    }

    package static func decode(_ row: PostgresRow) throws -> Device {
        let context: ReportedContext?
        if let json = try row.decode("context", as: String?.self), let at = try row.decode("context_at", as: Date?.self) {
            context = ReportedContext(context: try WireJSON.decode(DeviceContext.self, from: json), reportedAt: at)
        } else {
            context = nil
        }
        return Device(
            id: try row.decode("id", as: UUID.self),
            name: try row.decode("name", as: String.self),
            status: try row.decodeEnum("status", as: Device.Status.self),
            hardware: Hardware(class: try row.decode("hardware_class", as: String.self),
                               gflops: try row.decode("gflops", as: Double.self),
                               memoryMB: try row.decode("memory_mb", as: Int.self)),
            constraints: Constraints(latencyBudgetMs: try row.decode("latency_budget_ms", as: Double.self),
                                     memoryBudgetMB: try row.decode("memory_budget_mb", as: Double.self),
                                     energyBudgetMJ: try row.decode("energy_budget_mj", as: Double?.self)),
            context: context,
            labels: try WireJSON.decode([String: String].self, from: try row.decode("labels", as: String.self)),
            version: try row.decode("version", as: Int.self),
            createdAt: try row.decode("created_at", as: Date.self),
            updatedAt: try row.decode("updated_at", as: Date.self),
            lastSeenAt: try row.decode("last_seen_at", as: Date?.self))
    }
}
