import ArgumentParser
import Coordinator
import FleetAPI
import FleetClient
import Foundation
import Planner

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
        _ = try app.benchmarkFixtures.insertModel(name: "bench", planningSpace: space)

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
        try fleet(app: app, devices: fleetDevices)
    }

    /// The publish path at fleet scale: `devices` devices with varied hardware, budgets and links, inserted in one
    /// statement, then re-planned twice through the coordinator (first every config is new, then none changes).
    static func fleet(app: CoordinatorApp, devices: Int) throws {
        guard devices > 0 else { return }
        try app.benchmarkFixtures.insertVariedDevices(count: devices)
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
