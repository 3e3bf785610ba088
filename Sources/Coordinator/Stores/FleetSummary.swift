import Foundation
import PostgresClient

/// `GET /v1/fleet/summary`: devices by status and class, campaigns by status, jobs by state, mean gains.
struct FleetSummary: Codable, Sendable {
    var devicesByStatus: [String: Int]
    var devicesByClass: [String: Int]
    var campaignsByStatus: [String: Int]
    var jobsByState: [String: Int]
    var meanAccuracyGain: Double?
    var meanEntropyReduction: Double?
    var adaptedDevices: Int

    enum CodingKeys: String, CodingKey {
        case devicesByStatus = "devices_by_status"
        case devicesByClass = "devices_by_class"
        case campaignsByStatus = "campaigns_by_status"
        case jobsByState = "jobs_by_state"
        case meanAccuracyGain = "mean_accuracy_gain"
        case meanEntropyReduction = "mean_entropy_reduction"
        case adaptedDevices = "adapted_devices"
    }

    static func load(_ pool: PostgresPool) throws -> FleetSummary {
        try pool.withConnection { c in
            func counts(_ q: PostgresQuery) throws -> [String: Int] {
                var out: [String: Int] = [:]
                for row in try c.query(q).rows { out[try row.decode("k", as: String.self)] = try row.decode("n", as: Int.self) }
                return out
            }
            let gains = try c.query("""
                SELECT avg((result->'metrics'->>'accuracy_after')::float8 - (result->'metrics'->>'accuracy_before')::float8) AS acc,
                       avg((result->'metrics'->>'entropy_before')::float8 - (result->'metrics'->>'entropy_after')::float8) AS ent,
                       count(DISTINCT device_id)::bigint AS n
                FROM jobs WHERE state = 'succeeded' AND kind = 'adapt'
                """).rows[0]
            return FleetSummary(
                devicesByStatus: try counts("SELECT status AS k, count(*)::bigint AS n FROM devices GROUP BY status"),
                devicesByClass: try counts("SELECT hardware_class AS k, count(*)::bigint AS n FROM devices WHERE status = 'active' GROUP BY hardware_class"),
                campaignsByStatus: try counts("SELECT status AS k, count(*)::bigint AS n FROM campaigns GROUP BY status"),
                jobsByState: try counts("SELECT state AS k, count(*)::bigint AS n FROM jobs GROUP BY state"),
                meanAccuracyGain: try gains.decode("acc", as: Double?.self),
                meanEntropyReduction: try gains.decode("ent", as: Double?.self),
                adaptedDevices: try gains.decode("n", as: Int.self))
        }
    }
}
