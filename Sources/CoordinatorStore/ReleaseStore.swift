import FleetAPI
import Foundation
import PostgresClient

/// SQL for `releases`: a model release and the campaign it runs as (status, waves and jobs are the campaign's).
package struct ReleaseStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    package struct Row: Sendable {
        package let id: UUID
        package let campaignID: UUID
        package let modelID: UUID
        package let spec: ReleaseRequest
        package let startAt: Date?
        package let createdAt: Date
        package let status: CampaignStatus
    }

    static let columns = "r.id, r.campaign_id, r.model_id, r.spec::text AS spec, r.start_at, r.created_at, c.status"

    /// Writes the release in the caller's transaction (which wrote its campaign).
    package func insert(id: UUID, campaignID: UUID, request: ReleaseRequest, now: Date, on c: PostgresConnection) throws {
        try c.query("""
            INSERT INTO releases (id, campaign_id, model_id, spec, start_at, created_at)
            VALUES (\(id), \(campaignID), \(request.modelID), \(try WireJSON.string(request))::jsonb, \(request.startAt), \(now))
            """)
    }

    package func find(_ id: UUID, on c: PostgresConnection? = nil) throws -> Row? {
        let q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM releases r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = \(id)"
        return try (c.map { try $0.query(q) } ?? pool.query(q)).rows.first.map(Self.decode)
    }

    /// Releases in id order after the cursor, optionally of one status (their campaign's).
    package func list(limit: Int, after: UUID?, status: CampaignStatus?, model: UUID?) throws -> (rows: [Row], next: String?) {
        var q: PostgresQuery = "SELECT \(unsafeRaw: Self.columns) FROM releases r JOIN campaigns c ON c.id = r.campaign_id WHERE true"
        if let status { q.append(" AND c.status = \(status.rawValue)") }
        if let model { q.append(" AND r.model_id = \(model)") }
        if let after { q.append(" AND r.id > \(after)") }
        q.append(" ORDER BY r.id LIMIT \(limit + 1)")
        let rows = try pool.query(q).rows.map(Self.decode)
        let page = Array(rows.prefix(limit))
        return (page, rows.count > limit ? page.last?.id.uuidString.lowercased() : nil)
    }

    /// The model of the release whose campaign `job` belongs to; nil for a job of a plain campaign.
    package func model(ofJob job: UUID) throws -> UUID? {
        try pool.query("SELECT r.model_id FROM releases r JOIN jobs j ON j.campaign_id = r.campaign_id WHERE j.id = \(job)")
            .rows.first?.decode("model_id", as: UUID.self)
    }

    /// Whether `device`'s attempt `attempt` holds `job`, a release's `profile` job, and the release's model.
    package enum JobHold: Equatable {
        /// No job of this device with that id.
        case notFound
        /// The device's job, but not a release's `profile` job.
        case notARelease
        /// The release's job, but that attempt does not hold it now.
        case notHeld
        case held(model: UUID)
    }

    package func hold(job: UUID, device: UUID, attempt: Int) throws -> JobHold {
        guard let row = try pool.query("""
            SELECT j.kind = 'profile' AND r.model_id IS NOT NULL AS release, r.model_id,
                   j.state IN ('leased', 'running') AND j.attempt = \(attempt) AS held
            FROM jobs j LEFT JOIN releases r ON r.campaign_id = j.campaign_id
            WHERE j.id = \(job) AND j.device_id = \(device)
            """).rows.first else { return .notFound }
        guard try row.decode("release", as: Bool?.self) == true, let model = try row.decode("model_id", as: UUID?.self) else { return .notARelease }
        return try row.decode("held", as: Bool.self) ? .held(model: model) : .notHeld
    }

    /// The model of the newest release still in force (not canceled or aborted) whose selector matches `device`:
    /// what a device that has no config yet is planned with.
    package func model(forUnconfigured device: UUID) throws -> UUID? {
        try pool.query("""
            SELECT r.model_id FROM releases r JOIN campaigns c ON c.id = r.campaign_id JOIN devices d ON d.id = \(device)
            JOIN models m ON m.id = r.model_id
            WHERE c.status NOT IN ('canceled', 'aborted', 'rolling_back', 'rolled_back') AND m.deprecated_at IS NULL
              AND d.labels @> COALESCE(r.spec->'selector'->'labels', '{}'::jsonb)
              AND (r.spec->'selector'->'device_ids' IS NULL OR r.spec->'selector'->'device_ids' ? lower(d.id::text))
            ORDER BY r.created_at DESC, r.id DESC LIMIT 1
            """).rows.first?.decode("model_id", as: UUID.self)
    }

    /// Releases per status (their campaign's), for `/metrics`.
    package func countsByStatus() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try pool.query("SELECT c.status AS k, count(*)::bigint AS n FROM releases r JOIN campaigns c ON c.id = r.campaign_id GROUP BY c.status").rows {
            out[try row.decode("k", as: String.self)] = try row.decode("n", as: Int.self)
        }
        return out
    }

    /// How many releases exist and when the last changed status: `Replanner.catchUp` looks again when this moves.
    package func fingerprint() throws -> String {
        let row = try pool.query("""
            SELECT count(*)::bigint AS n, COALESCE(max(c.updated_at)::text, '') AS at FROM releases r JOIN campaigns c ON c.id = r.campaign_id
            """).rows[0]
        return "\(try row.decode("n", as: Int.self))@\(try row.decode("at", as: String.self))"
    }

    static func decode(_ row: PostgresRow) throws -> Row {
        Row(id: try row.decode("id", as: UUID.self), campaignID: try row.decode("campaign_id", as: UUID.self),
            modelID: try row.decode("model_id", as: UUID.self),
            spec: try WireJSON.decode(ReleaseRequest.self, from: try row.decode("spec", as: String.self)),
            startAt: try row.decode("start_at", as: Date?.self), createdAt: try row.decode("created_at", as: Date.self),
            status: try row.decodeEnum("status", as: CampaignStatus.self))
    }
}
