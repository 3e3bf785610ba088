import FleetAPI
import Foundation
import PostgresClient

extension ModelStore {
    /// One device's measured latencies for a model, read on the caller's connection: a re-plan reads them while
    /// holding the device's planning lock, and a second pool connection per locked re-plan could exhaust the pool.
    func measuredLatencies(model: UUID, device: UUID, on c: PostgresConnection) throws -> [[Double]]? {
        guard let text = try c.query("""
            SELECT latencies::text AS latencies FROM device_variant_latencies WHERE model_id = \(model) AND device_id = \(device)
            """).rows.first?.decode("latencies", as: String.self) else { return nil }
        do { return try JSON.decode([[Double]].self, from: text) } catch {
            Log.error("measured latencies of device \(device.uuidString.lowercased()) for model \(model.uuidString.lowercased()) do not decode (planning with reference latencies): \(error)")
            return nil
        }
    }
}
