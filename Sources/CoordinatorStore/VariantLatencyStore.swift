import FleetAPI
import Foundation
import PostgresClient

/// SQL for `device_variant_latencies`: the per-variant latencies a device measured for a model (`profile` jobs),
/// `[block][variant]` ms, which the planner prefers over scaled reference figures.
package struct VariantLatencyStore: Sendable {
    package let pool: PostgresPool

    package init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Stores (or replaces) a device's measurement for a model, in the caller's transaction (the job's result).
    package func record(device: UUID, model: UUID, latencies: [[Double]], now: Date, on c: PostgresConnection) throws {
        try c.query("""
            INSERT INTO device_variant_latencies (device_id, model_id, latencies, measured_at)
            VALUES (\(device), \(model), \(try WireJSON.string(latencies))::jsonb, \(now))
            ON CONFLICT (device_id, model_id) DO UPDATE SET latencies = EXCLUDED.latencies, measured_at = EXCLUDED.measured_at
            """)
    }

    /// One device's measured latencies for a model, read on the caller's connection: a re-plan reads them while
    /// holding the device's planning lock, and a second pool connection per locked re-plan could exhaust the pool.
    package func measured(model: UUID, device: UUID, on c: PostgresConnection) throws -> [[Double]]? {
        guard let text = try c.query("""
            SELECT latencies::text AS latencies FROM device_variant_latencies WHERE model_id = \(model) AND device_id = \(device)
            """).rows.first?.decode("latencies", as: String.self) else { return nil }
        do { return try WireJSON.decode([[Double]].self, from: text) } catch {
            Self.logUndecodable(device: device, model: model, error)
            return nil
        }
    }

    /// The measured latencies of these devices for a model (devices without a readable one are absent).
    package func measured(model: UUID, devices: [UUID]) throws -> [UUID: [[Double]]] {
        guard !devices.isEmpty else { return [:] }
        var out: [UUID: [[Double]]] = [:]
        for row in try pool.query("""
            SELECT device_id, latencies::text AS latencies FROM device_variant_latencies
            WHERE model_id = \(model) AND device_id = ANY(\(PostgresArray(devices)))
            """).rows {
            let device = try row.decode("device_id", as: UUID.self)
            do { out[device] = try WireJSON.decode([[Double]].self, from: try row.decode("latencies", as: String.self)) } catch {
                Self.logUndecodable(device: device, model: model, error)
            }
        }
        return out
    }

    /// Forgets every measurement of a model (it is being deleted), in the caller's transaction.
    package func deleteAll(model: UUID, on c: PostgresConnection) throws {
        try c.query("DELETE FROM device_variant_latencies WHERE model_id = \(model)")
    }

    private static func logUndecodable(device: UUID, model: UUID, _ error: any Error) {
        Log.error("measured latencies of device \(device.uuidString.lowercased()) for model \(model.uuidString.lowercased()) do not decode (planning with reference latencies): \(error)")
    }
}
