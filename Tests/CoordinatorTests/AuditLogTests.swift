import Foundation
import PostgresClient
import Testing

/// The audit log against the real coordinator: a mutation and a refused credential are recorded with their actor,
/// route template, resource, status, request id and client address; `GET /v1/audit` filters them; the table
/// refuses UPDATE and DELETE.
@Suite struct AuditLogTests {
    @Test func aMutationAndAFailedAuthenticationAreRecorded() async throws {
        let c = try TestCoordinator()
        let op = try await AccessControlTests.createKey(c, role: "operator", name: "ci-bot")
        let r = try await c.request("POST", "/v1/devices", token: op.token, json: AccessControlTests.registration,
                                    headers: ["X-Request-Id": "audit-create-1"])
        #expect(r.status == 201)
        let id = try #require((r.object?["device"] as? [String: Any])?["id"] as? String)
        #expect(try await c.request("GET", "/v1/devices", token: "fak_wrong", headers: ["X-Request-Id": "audit-denied-1"]).status == 401)
        #expect(try await c.request("GET", "/v1/devices").status == 200)

        let page = try await c.request("GET", "/v1/audit")
        #expect(page.status == 200)
        let items = (page.object?["items"] as? [[String: Any]]) ?? []
        let created = try #require(items.first { $0["request_id"] as? String == "audit-create-1" })
        #expect(created["actor_kind"] as? String == "api_key")
        #expect(created["actor_id"] as? String == op.id)
        #expect(created["actor_name"] as? String == "ci-bot")
        #expect(created["method"] as? String == "POST")
        #expect(created["route"] as? String == "/v1/devices")
        #expect(created["resource_id"] as? String == id)
        #expect(created["status"] as? Int == 201)
        #expect(created["client_address"] as? String == "127.0.0.1")
        let denied = try #require(items.first { $0["request_id"] as? String == "audit-denied-1" })
        #expect(denied["actor_kind"] as? String == "anonymous")
        #expect(denied["status"] as? Int == 401)
        #expect(denied["route"] as? String == "/v1/devices")
        // Reads are not recorded; the key's creation by the bootstrap admin key is.
        #expect(!items.contains { $0["method"] as? String == "GET" && $0["status"] as? Int == 200 })
        #expect(items.contains { $0["route"] as? String == "/v1/api-keys" && $0["actor_kind"] as? String == "admin_key" })
        #expect(!page.text.contains(op.token))

        // Filters and the cursor.
        let byActor = try await c.request("GET", "/v1/audit?actor=\(op.id)").object?["items"] as? [[String: Any]]
        #expect(byActor?.count == 1)
        let byStatus = try await c.request("GET", "/v1/audit?status=401").object?["items"] as? [[String: Any]]
        #expect(byStatus?.count == 1)
        let first = try await c.request("GET", "/v1/audit?limit=1")
        let next = try #require(first.object?["next"] as? String)
        let second = try await c.request("GET", "/v1/audit?limit=1&after=\(next)").object?["items"] as? [[String: Any]]
        #expect(second?.count == 1)
        #expect((second?.first?["id"] as? Int) ?? 0 < Int(next)!)
        #expect(try await c.request("GET", "/v1/audit?since=yesterday").problemFields == ["since"])
        #expect(try await c.request("GET", "/v1/audit", token: op.token).status == 403)
    }

    /// A device's own changes are recorded with the device as actor; its telemetry (metric reports, heartbeats) is
    /// not; a valid key refused for its role is recorded under that key, not as anonymous.
    @Test func deviceChangesAndRoleRefusalsNameTheirActor() async throws {
        let c = try TestCoordinator()
        let (device, token) = try await c.registerDevice(name: "audited")
        #expect(try await c.request("PUT", "/v1/agent/context", token: token, json: #"{"battery_pct": 50}"#,
                                    headers: ["X-Request-Id": "audit-context-1"]).status == 200)
        #expect(try await c.request("POST", "/v1/agent/metrics", token: token, json: #"{"kind": "latency", "values": {"p50": 1}}"#,
                                    headers: ["X-Request-Id": "audit-metric-1"]).status < 300)
        let viewer = try await AccessControlTests.createKey(c, role: "viewer", name: "dash")
        #expect(try await c.request("POST", "/v1/devices", token: viewer.token, json: AccessControlTests.registration,
                                    headers: ["X-Request-Id": "audit-role-1"]).status == 403)
        #expect(try await c.request("GET", "/v1/devices", token: token, headers: ["X-Request-Id": "audit-devtoken-1"]).status == 403)

        let items = (try await c.request("GET", "/v1/audit?limit=500").object?["items"] as? [[String: Any]]) ?? []
        let context = try #require(items.first { $0["request_id"] as? String == "audit-context-1" })
        #expect(context["actor_kind"] as? String == "device")
        #expect(context["actor_id"] as? String == device)
        #expect(context["route"] as? String == "/v1/agent/context")
        #expect(context["status"] as? Int == 200)
        #expect(!items.contains { $0["request_id"] as? String == "audit-metric-1" })
        let role = try #require(items.first { $0["request_id"] as? String == "audit-role-1" })
        #expect(role["actor_kind"] as? String == "api_key")
        #expect(role["actor_id"] as? String == viewer.id)
        #expect(role["status"] as? Int == 403)
        let devToken = try #require(items.first { $0["request_id"] as? String == "audit-devtoken-1" })
        #expect(devToken["actor_kind"] as? String == "device" && devToken["actor_id"] as? String == device)
        let text = try await c.request("GET", "/v1/audit?limit=500").text
        #expect(!text.contains(token) && !text.contains(viewer.token))
    }

    @Test func theAuditTableRefusesUpdateAndDelete() async throws {
        let c = try TestCoordinator()
        #expect(try await c.request("POST", "/v1/api-keys", json: #"{"name": "k", "role": "viewer"}"#).status == 201)
        let before = try c.count("audit_log")
        #expect(before >= 1)
        #expect(throws: PostgresError.self) { try c.sql("UPDATE audit_log SET status = 200") }
        #expect(throws: PostgresError.self) { try c.sql("DELETE FROM audit_log") }
        #expect(throws: PostgresError.self) { try c.sql("TRUNCATE audit_log") }
        #expect(try c.count("audit_log") == before)
    }
}
