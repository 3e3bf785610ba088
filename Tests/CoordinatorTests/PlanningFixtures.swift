import Foundation
import PostgresClient

extension TestCoordinator {
    /// An elastic model written straight into the tables with a synthetic 5-block × 5-variant planning space (the
    /// shape of the planner tests' `Fixtures.fiveByFive`), so config tests control every cost and need no package.
    /// The space is hand-written JSON in `PlanningSpace`'s default Codable keys, which also pins the stored format.
    func insertPlannableModel(baseAccuracy: Double = 0.91) throws -> String {
        let id = UUID()
        let content = Array("fixture elastic package \(id)".utf8)
        let digest = try sql("SELECT sha256(\(content)) AS d").rows[0].decode("d", as: [UInt8].self)
        let space = String(decoding: try JSONSerialization.data(withJSONObject: Self.fiveByFiveSpace(baseAccuracy: baseAccuracy)), as: UTF8.self)
        _ = try sql("""
            WITH blob AS (INSERT INTO model_blobs (sha256, size_bytes, content, created_at) VALUES (\(digest), \(content.count), \(content), now()))
            INSERT INTO models (id, name, package_sha256, size_bytes, manifest, combination_count, planning_space, created_at)
            VALUES (\(id), 'fixture-5x5', \(digest), \(content.count), '{}'::jsonb, 3125, \(space)::jsonb, clock_timestamp())
            """)
        return id.uuidString.lowercased()
    }

    /// Reference machine 20 GFLOP/s; the whole unpruned chain is 4.55 reference ms, so a 2 GFLOP/s device needs
    /// 45.5 ms on its own, and the stem's output (50,176 bytes) crosses a 1 Gbit/s link in 0.4 ms.
    static func fiveByFiveSpace(baseAccuracy: Double) -> [String: Any] {
        let blockMs = [1.2, 0.9, 0.8, 0.7, 0.6]
        let out = [16 * 28 * 28 * 4, 32 * 14 * 14 * 4, 32 * 14 * 14 * 4, 64 * 7 * 7 * 4, 64 * 7 * 7 * 4]
        let params = [9_472, 37_888, 74_240, 148_480, 295_424]
        let ids = ["s0", "s25", "s50", "s75", "skip"]
        let keep = [1.0, 0.75, 0.5, 0.25, 0.02]
        let drops = [0.0, 0.004, 0.012, 0.03, 0.06]
        let blocks: [[String: Any]] = (0..<5).map { b in
            ["name": "block\(b)", "variants": (0..<5).map { v -> [String: Any] in
                ["id": ids[v], "referenceLatencyMs": blockMs[b] * keep[v], "flops": 2e7 * keep[v],
                 "paramBytes": Int(Double(params[b]) * keep[v]), "peakActivationBytes": out[b] * 2,
                 "outputBytes": out[b], "accuracyDrop": drops[v] * Double(b + 1) / 3]
            }]
        }
        return ["blocks": blocks, "baseAccuracy": baseAccuracy, "referenceGFLOPS": 20.0,
                "stem": ["referenceLatencyMs": 0.3, "flops": 0.0, "paramBytes": 1_792, "peakActivationBytes": 50_176],
                "head": ["referenceLatencyMs": 0.05, "flops": 0.0, "paramBytes": 2_600, "peakActivationBytes": 256],
                "inputBytes": 16 * 28 * 28 * 4]
    }
}
