import Foundation
import PostgresClient

extension ModelStore {
    /// The measurements the planner reads with a model; their SQL is `VariantLatencyStore`'s.
    package var variantLatencies: VariantLatencyStore { VariantLatencyStore(pool: pool) }

    /// One device's measured latencies for a model, on the caller's connection (see `VariantLatencyStore.measured`).
    package func measuredLatencies(model: UUID, device: UUID, on c: PostgresConnection) throws -> [[Double]]? {
        try variantLatencies.measured(model: model, device: device, on: c)
    }

    /// Per-variant latencies devices measured for a model (`profile` jobs), `[block][variant]` ms.
    package func measuredLatencies(model: UUID, devices: [UUID]) throws -> [UUID: [[Double]]] {
        try variantLatencies.measured(model: model, devices: devices)
    }
}
