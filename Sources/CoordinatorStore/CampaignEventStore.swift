import FleetAPI
import Foundation
import PostgresClient

/// SQL for `campaign_events`: a campaign's history (state changes with their time and cause), appended in the
/// transaction that makes the change, so the history never shows what did not commit nor misses what did.
package struct CampaignEventStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Appends an event, in the caller's transaction.
    package func record(_ campaign: UUID, _ kind: CampaignEvent.Kind, cause: CampaignEvent.Cause, details: CampaignEvent.Details = .init(),
                        now: Date, on c: PostgresConnection) throws {
        try c.query("""
            INSERT INTO campaign_events (campaign_id, kind, cause, details, created_at)
            VALUES (\(campaign), \(kind.rawValue), \(cause.rawValue), \(try WireJSON.string(details))::jsonb, \(now))
            """)
    }

    /// A campaign's events in the order they were written, after the cursor (an event id).
    package func list(campaign: UUID, limit: Int, after: Int?) throws -> Page<CampaignEvent> {
        var q: PostgresQuery = """
            SELECT id, campaign_id, kind, cause, details::text AS details, created_at FROM campaign_events WHERE campaign_id = \(campaign)
            """
        if let after { q.append(" AND id > \(after)") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let items = try pool.query(q).rows.map { row in
            CampaignEvent(id: try row.decode("id", as: Int.self), campaignID: try row.decode("campaign_id", as: UUID.self),
                          kind: try row.decodeEnum("kind", as: CampaignEvent.Kind.self),
                          cause: try row.decodeEnum("cause", as: CampaignEvent.Cause.self),
                          details: try WireJSON.decode(CampaignEvent.Details.self, from: try row.decode("details", as: String.self)),
                          at: try row.decode("created_at", as: Date.self))
        }
        let page = Array(items.prefix(limit))
        return Page(items: page, next: items.count > limit ? page.last.map { String($0.id) } : nil)
    }
}
