import Foundation
import Testing
import PostgresClient

/// The coordinator survives its database restarting: a request caught by the outage gets a 503 problem,
/// and once the server is back the next requests succeed with no coordinator restart.
@Suite struct DatabaseRestartTests {
    @Test func outageIs503AndRecoveryNeedsNoRestart() async throws {
        let dir = "/tmp/fleetadapt-outage-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pg = EmbeddedPostgres(dataDirectory: dir)
        let config = try pg.start()
        defer { try? pg.stop() }
        let c = try TestCoordinator(database: config)
        let (id, _) = try await c.registerDevice(name: "survivor")
        #expect(try await c.request("GET", "/v1/devices/\(id)").status == 200)

        try pg.stop()
        let during = try await c.request("GET", "/v1/devices/\(id)")
        #expect(during.status == 503)
        #expect(during.isProblem)
        #expect(during.headers["retry-after"] != nil)
        #expect(try await c.request("GET", "/readyz", token: nil).status == 503)
        #expect(try await c.request("GET", "/healthz", token: nil).status == 200)

        _ = try pg.start()
        var status = 0
        for _ in 0..<3 where status != 200 { status = try await c.request("GET", "/v1/devices/\(id)").status }
        #expect(status == 200)
        #expect(try await c.request("GET", "/readyz", token: nil).status == 200)
    }
}
