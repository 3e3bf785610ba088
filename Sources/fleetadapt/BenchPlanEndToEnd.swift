import ArgumentParser
import Coordinator
import FleetAPI
import FleetClient
import Foundation
import Planner
import PostgresClient

/// The service path of a re-plan: a device reports a context that changes its decision, and the new config is
/// readable. Runs a real coordinator on its own embedded PostgreSQL, with the bench's planning space stored as a
/// published model; the baseline is GET /healthz over the same kind of client in the same run.
enum BenchPlanEndToEnd {
    static func run(space: PlanningSpace, changes: Int, fleetDevices: Int) throws {
        let dir = NSTemporaryDirectory() + "fleetadapt-bench-plan-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = "bench-admin-key-" + UUID().uuidString.lowercased()
        let app = try CoordinatorApp(configuration: CoordinatorConfiguration(
            host: "127.0.0.1", port: 0, dataDirectory: dir, adminKey: key, threadPoolSize: 4, maxDatabaseConnections: 4, accessLog: false))
        defer { app.shutdown() }
        let base = "http://127.0.0.1:\(app.port)"

        // The bench space as a published model (what POST /v1/models stores for a package).
        let pool = PostgresPool(configuration: app.databaseConfiguration, maxConnections: 1)
        defer { pool.close() }
        let spaceJSON = String(decoding: try JSONEncoder().encode(space), as: UTF8.self)
        let content = Array("bench planning space".utf8)
        _ = try pool.query("""
            WITH blob AS (INSERT INTO model_blobs (sha256, size_bytes, content, created_at)
                          VALUES (sha256(\(content)), \(content.count), \(content), now()) RETURNING sha256)
            INSERT INTO models (id, name, package_sha256, size_bytes, manifest, planning_space, combination_count, created_at)
            SELECT \(UUID()), 'bench', sha256, \(content.count), '{}'::jsonb, \(spaceJSON)::jsonb, \(Int(space.combinationCount)), now() FROM blob
            """)

        // A slow device next to a fast edge server: a fast link splits the network, a slow one keeps it local,
        // so alternating the two changes the decision every time.
        let admin = CoordinatorClient(baseURL: base, token: key)
        let created = try admin.registerDevice(DeviceRegistration(
            name: "bench", hardware: Hardware(class: "phone", gflops: 0.5, memoryMB: 4096),
            constraints: Constraints(latencyBudgetMs: 40, memoryBudgetMB: 512)))
        let device = CoordinatorClient(baseURL: base, token: created.token)
        let contexts = [
            DeviceContext(batteryPct: 80, bandwidthMbps: 1000, rttMs: 1, edgeServer: "edge", edgeServerGFLOPS: 500),
            DeviceContext(batteryPct: 80, bandwidthMbps: 0.05, rttMs: 300, edgeServer: "edge", edgeServerGFLOPS: 500),
        ]
        func version() throws -> Int {
            guard case .config(let config) = try device.config(attempts: 1) else { return 0 }
            return config.version
        }
        var last = try version()
        var times: [Double] = [], health: [Double] = []
        var unchanged = 0
        for i in 0..<changes {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try device.reportContext(contexts[i % 2], retry: .attempts(1))
            let v = try version()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            if v == last { unchanged += 1 }
            last = v
            let h0 = DispatchTime.now().uptimeNanoseconds
            _ = try admin.healthy()
            health.append(Double(DispatchTime.now().uptimeNanoseconds - h0) / 1e6)
        }
        times.sort()
        health.sort()
        func q(_ a: [Double], _ p: Double) -> Double { a[min(a.count - 1, Int(Double(a.count) * p))] }
        print(String(format: "end to end (%d context changes through a coordinator on embedded PostgreSQL): PUT /v1/agent/context → "
                     + "new config read back: p50 %.2f ms, p99 %.2f ms; GET /healthz on the same client: p50 %.2f ms (ratio %.1f×); "
                     + "%d changes left the version unchanged", changes, q(times, 0.5), q(times, 0.99), q(health, 0.5),
                     q(times, 0.5) / max(q(health, 0.5), 1e-9), unchanged))
        try fleet(app: app, pool: pool, devices: fleetDevices)
    }

    /// The publish path at fleet scale: `devices` devices with varied hardware, budgets and links, inserted in one
    /// statement, then re-planned twice through the coordinator (first every config is new, then none changes).
    static func fleet(app: CoordinatorApp, pool: PostgresPool, devices: Int) throws {
        guard devices > 0 else { return }
        _ = try pool.query("""
            INSERT INTO devices (id, name, hardware_class, gflops, memory_mb, latency_budget_ms, memory_budget_mb, energy_budget_mj,
                                 labels, context, context_at, token_sha256, created_at, updated_at)
            SELECT gen_random_uuid(), 'fleet-' || i, (ARRAY['mcu','raspberry-pi-4','phone','jetson-nano','jetson-orin'])[1 + i % 5],
                   0.2 + (i % 97) * 0.5, 512 + (i % 7) * 512, 1 + (i % 50) * 0.8, 1 + (i % 13) * 4,
                   CASE WHEN i % 3 = 0 THEN 5 + (i % 11) * 10 END, '{}'::jsonb,
                   CASE WHEN i % 4 = 0 THEN jsonb_build_object('edge_server', 'edge', 'bandwidth_mbps', 1 + (i % 50) * 20, 'rtt_ms', 1 + i % 9,
                                                                'battery_pct', i % 100)
                        ELSE jsonb_build_object('battery_pct', i % 100) END,
                   now(), sha256(('fleet-token-' || i)::bytea), now(), now()
            FROM generate_series(1, \(devices)) AS i
            """)
        for pass in ["first (every config new)", "again (nothing changed)"] {
            let start = DispatchTime.now().uptimeNanoseconds
            let (planned, changed) = try app.replanFleet()
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            print(String(format: "fleet re-plan through the coordinator, %@: %d devices planned, %d config versions written, %.0f ms "
                         + "(%.1f µs per device: one read of the fleet, planning and encoding on every core, one COPY of the changed configs)",
                         pass as NSString, planned, changed, ms, ms * 1000 / Double(max(planned, 1))))
        }
    }
}
