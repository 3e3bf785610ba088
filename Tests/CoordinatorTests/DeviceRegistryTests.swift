import Foundation
import Testing

@Suite struct DeviceRegistryTests {
    let c: TestCoordinator
    init() throws { c = try TestCoordinator() }

    @Test func registerReadListPatchDecommission() async throws {
        let (id, token) = try await c.registerDevice(name: "cam-berlin-1", labels: ["site": "berlin", "tier": "cam"])
        #expect(token.hasPrefix("fad_"))
        let read = try await c.request("GET", "/v1/devices/\(id)")
        #expect(read.status == 200)
        #expect(read.object?["name"] as? String == "cam-berlin-1")
        #expect(read.headers["etag"] == "\"v1\"")
        #expect(read.object?["token"] == nil)

        // The token is stored as its SHA-256 only.
        #expect(try c.count("devices WHERE token_sha256 = sha256(convert_to('\(token)', 'UTF8'))") == 1)

        let patched = try await c.request("PATCH", "/v1/devices/\(id)", json: #"{"name": "cam-berlin-renamed", "labels": {"site": "munich"}}"#,
                                          headers: ["If-Match": "\"v1\""])
        #expect(patched.status == 200)
        #expect(patched.headers["etag"] == "\"v2\"")
        #expect((patched.object?["labels"] as? [String: String]) == ["site": "munich"])

        let stale = try await c.request("PATCH", "/v1/devices/\(id)", json: #"{"name": "x"}"#, headers: ["If-Match": "\"v1\""])
        #expect(stale.status == 412)
        #expect(stale.isProblem)
        let after = try await c.request("GET", "/v1/devices/\(id)")
        #expect(after.object?["name"] as? String == "cam-berlin-renamed")

        let deleted = try await c.request("DELETE", "/v1/devices/\(id)")
        #expect(deleted.status == 204)
        let gone = try await c.request("PUT", "/v1/agent/context", token: token, json: #"{"battery_pct": 50}"#)
        #expect(gone.status == 404)
        let kept = try await c.request("GET", "/v1/devices/\(id)")
        #expect(kept.object?["status"] as? String == "decommissioned")
    }

    @Test func paginationVisitsEveryDeviceOnceAndFilters() async throws {
        var ids: Set<String> = []
        for i in 0..<7 {
            let labels = i % 2 == 0 ? ["site": "berlin", "tier": "cam"] : ["site": "paris"]
            ids.insert(try await c.registerDevice(name: "dev-\(i)", labels: labels).id)
        }
        var seen: [String] = []
        var after: String?
        repeat {
            let r = try await c.request("GET", "/v1/devices?limit=3" + (after.map { "&after=\($0)" } ?? ""))
            #expect(r.status == 200)
            let items = r.object?["items"] as? [[String: Any]] ?? []
            #expect(items.count <= 3)
            seen += items.compactMap { $0["id"] as? String }
            after = r.object?["next"] as? String
        } while after != nil
        #expect(seen.count == 7)
        #expect(Set(seen) == ids)
        #expect(seen == seen.sorted())

        let berlin = try await c.request("GET", "/v1/devices?labels=site=berlin,tier=cam")
        #expect((berlin.object?["items"] as? [Any])?.count == 4)
        let bad = try await c.request("GET", "/v1/devices?labels=site")
        #expect(bad.status == 400)
        #expect(bad.problemFields == ["labels"])
        let badStatus = try await c.request("GET", "/v1/devices?status=sleeping")
        #expect(badStatus.status == 400)
        #expect(badStatus.problemFields == ["status"])
        let badLimit = try await c.request("GET", "/v1/devices?limit=0")
        #expect(badLimit.status == 400)
    }

    @Test func idempotencyKeyReplaysTheFirstDevice() async throws {
        let body = #"{"name": "idem", "hardware": {"class": "phone", "gflops": 5, "memory_mb": 2048}, "constraints": {"latency_budget_ms": 50, "memory_budget_mb": 100}}"#
        let first = try await c.request("POST", "/v1/devices", json: body, headers: ["Idempotency-Key": "k-1"])
        let second = try await c.request("POST", "/v1/devices", json: body, headers: ["Idempotency-Key": "k-1"])
        #expect(first.status == 201)
        #expect(second.status == 201)
        #expect(second.headers["idempotent-replayed"] == "true")
        let id1 = (first.object?["device"] as? [String: Any])?["id"] as? String
        let id2 = (second.object?["device"] as? [String: Any])?["id"] as? String
        #expect(id1 != nil && id1 == id2)
        #expect(try c.count("devices WHERE name = 'idem'") == 1)
        // The replayed answer's token works; the first one was rotated away.
        let token2 = try #require(second.object?["token"] as? String)
        #expect(try await c.request("PUT", "/v1/agent/context", token: token2, json: "{}").status == 200)
        let token1 = try #require(first.object?["token"] as? String)
        #expect(try await c.request("PUT", "/v1/agent/context", token: token1, json: "{}").status == 401)
        // Same key, other body: refused, nothing created.
        let other = try await c.request("POST", "/v1/devices", json: body.replacingOccurrences(of: "idem", with: "idem2"),
                                        headers: ["Idempotency-Key": "k-1"])
        #expect(other.status == 422)
        #expect(other.problemCode == "idempotency_key_reused")
        #expect(try c.count("devices WHERE name = 'idem2'") == 0)
    }

    @Test func concurrentRetriesWithOneKeyCreateOneDevice() async throws {
        let body = #"{"name": "race", "hardware": {"class": "phone", "gflops": 5, "memory_mb": 2048}, "constraints": {"latency_budget_ms": 50, "memory_budget_mb": 100}}"#
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask { try await c.request("POST", "/v1/devices", json: body, headers: ["Idempotency-Key": "race-key"]).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0 == 201 })
        #expect(try c.count("devices WHERE name = 'race'") == 1)
    }

    @Test func agentContextIsStoredWithTimestampAndHistory() async throws {
        let (id, token) = try await c.registerDevice()
        let r = try await c.request("PUT", "/v1/agent/context", token: token,
                                    json: #"{"battery_pct": 42.5, "bandwidth_mbps": 80, "rtt_ms": 12, "free_memory_mb": 900, "edge_server": "10.0.0.2:9000"}"#)
        #expect(r.status == 200)
        #expect(r.object?["reported_at"] is String)
        let device = try await c.request("GET", "/v1/devices/\(id)")
        let context = device.object?["context"] as? [String: Any]
        #expect(context?["battery_pct"] as? Double == 42.5)
        #expect(context?["edge_server"] as? String == "10.0.0.2:9000")
        #expect(device.object?["last_seen_at"] is String)
        #expect(try c.count("device_context_reports WHERE device_id = '\(id)'") == 1)

        let bad = try await c.request("PUT", "/v1/agent/context", token: token, json: #"{"battery_pct": 140}"#)
        #expect(bad.status == 422)
        #expect(bad.problemFields == ["battery_pct"])
        #expect(try c.count("device_context_reports WHERE device_id = '\(id)'") == 1)
    }

    @Test func credentialsOfTheWrongKindAreRefused() async throws {
        let (idA, tokenA) = try await c.registerDevice(name: "a")
        _ = try await c.registerDevice(name: "b")
        #expect(try await c.request("GET", "/v1/devices", token: nil).status == 401)
        let wrong = try await c.request("GET", "/v1/devices", token: "not-a-key")
        #expect(wrong.status == 401)
        #expect(wrong.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(try await c.request("GET", "/v1/devices", token: tokenA).status == 403)
        #expect(try await c.request("GET", "/v1/devices/\(idA)", token: tokenA).status == 403)
        #expect(try await c.request("PUT", "/v1/agent/context", token: TestCoordinator.adminKey, json: "{}").status == 403)
        #expect(try await c.request("PUT", "/v1/agent/context", token: "fad_forged", json: "{}").status == 401)
    }
}
