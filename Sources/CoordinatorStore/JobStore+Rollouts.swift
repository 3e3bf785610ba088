import FleetAPI
import Foundation
import PostgresClient

/// The jobs table's part in safe rollouts: canceling one job or a campaign's open jobs (a canceled lease is fenced:
/// the agent's heartbeat and result are then refused with 409), and what events and continuous targeting read.
extension JobStore {
    /// Cancels every open job of a campaign (queued, retrying, leased, running), in the caller's transaction: a
    /// rollback lets nothing more of the campaign land. Returns how many.
    package func cancelOpen(campaign: UUID, now: Date, on c: PostgresConnection) throws -> Int {
        try c.query("""
            UPDATE jobs SET state = 'canceled', finished_at = \(now), updated_at = \(now), lease_expires_at = NULL
            WHERE campaign_id = \(campaign) AND state IN ('queued', 'leased', 'running')
            """).affectedRows
    }

    package enum JobCancel: Equatable {
        /// Canceled; `wasLeased`: an agent held it (its later result is refused).
        case canceled(device: UUID, wave: Int, wasLeased: Bool)
        case notFound
        /// The job already ended in this state.
        case finished(JobState)
    }

    /// Cancels one job of a campaign if it is still open, in the caller's transaction.
    package func cancel(job: UUID, campaign: UUID, now: Date, on c: PostgresConnection) throws -> JobCancel {
        guard let row = try c.query("""
            SELECT device_id, wave, state FROM jobs WHERE id = \(job) AND campaign_id = \(campaign) FOR UPDATE
            """).rows.first else { return .notFound }
        let state = try row.decodeEnum("state", as: JobState.self)
        guard [.queued, .leased, .running].contains(state) else { return .finished(state) }
        try c.query("""
            UPDATE jobs SET state = 'canceled', finished_at = \(now), updated_at = \(now), lease_expires_at = NULL WHERE id = \(job)
            """)
        return .canceled(device: try row.decode("device_id", as: UUID.self), wave: try row.decode("wave", as: Int.self),
                         wasLeased: state != .queued)
    }

    /// The campaign of a job, in the caller's transaction.
    package func campaign(ofJob job: UUID, on c: PostgresConnection) throws -> UUID? {
        try c.query("SELECT campaign_id FROM jobs WHERE id = \(job)").rows.first?.decode("campaign_id", as: UUID.self)
    }

    /// The gate's verdict stored on a job (a rejected one), in the caller's transaction.
    package func gateVerdict(job: UUID, on c: PostgresConnection) throws -> (device: UUID, verdict: GateVerdict?)? {
        guard let row = try c.query("SELECT device_id, gate::text AS gate FROM jobs WHERE id = \(job)").rows.first else { return nil }
        return (try row.decode("device_id", as: UUID.self),
                try row.decode("gate", as: String?.self).flatMap { try? WireJSON.decode(GateVerdict.self, from: $0) })
    }

    /// Jobs in one wave of a campaign: the devices a released wave reaches.
    package func waveSize(campaign: UUID, wave: Int, on c: PostgresConnection) throws -> Int {
        try c.query("SELECT count(*)::bigint AS n FROM jobs WHERE campaign_id = \(campaign) AND wave = \(wave)").rows[0].decode("n", as: Int.self)
    }

    /// The devices that have a job in a campaign.
    package func devices(inCampaign campaign: UUID, on c: PostgresConnection) throws -> Set<UUID> {
        Set(try c.query("SELECT device_id FROM jobs WHERE campaign_id = \(campaign)").rows.map { try $0.decode("device_id", as: UUID.self) })
    }

    /// The retry budget, timeout and lease of a campaign's jobs (they share them), for jobs added later.
    package func limits(campaign: UUID, on c: PostgresConnection) throws -> (maxAttempts: Int, timeoutS: Int, leaseS: Int)? {
        guard let row = try c.query("SELECT max_attempts, timeout_s, lease_s FROM jobs WHERE campaign_id = \(campaign) LIMIT 1").rows.first else {
            return nil
        }
        return (try row.decode("max_attempts", as: Int.self), try row.decode("timeout_s", as: Int.self), try row.decode("lease_s", as: Int.self))
    }
}
