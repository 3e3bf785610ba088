@testable import Coordinator
import CoordinatorHTTP
import Foundation
import Testing

/// API keys with roles against the real coordinator over HTTP: each role allowed or refused on representative
/// routes, the key shown once, revoked and expired keys refused, bad input refused naming the field, device
/// token rotation, and openapi.yaml's `x-required-role` equal to the route table.
@Suite struct AccessControlTests {
    /// Creates a key with `role` through the API (with the bootstrap admin key) and returns (id, secret).
    static func createKey(_ c: TestCoordinator, role: String, name: String? = nil) async throws -> (id: String, token: String) {
        let r = try await c.request("POST", "/v1/api-keys", json: #"{"name": "\#(name ?? role + "-key")", "role": "\#(role)"}"#)
        guard r.status == 201, let key = r.object?["api_key"] as? [String: Any], let id = key["id"] as? String,
              let token = r.object?["token"] as? String else { throw TestFailure("create key: \(r.status) \(r.text)") }
        return (id, token)
    }

    static let registration = """
        {"name": "cam", "hardware": {"class": "jetson-tx2", "gflops": 20, "memory_mb": 4096},
         "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}}
        """

    @Test func eachRoleIsAllowedOrRefusedOnRepresentativeRoutes() async throws {
        let c = try TestCoordinator()
        let viewer = try await Self.createKey(c, role: "viewer")
        let op = try await Self.createKey(c, role: "operator")
        let admin = try await Self.createKey(c, role: "admin")

        // Reads: every role.
        for key in [viewer, op, admin] {
            #expect(try await c.request("GET", "/v1/devices", token: key.token).status == 200)
            #expect(try await c.request("GET", "/v1/fleet/summary", token: key.token).status == 200)
        }
        // Devices: operator and admin; a viewer gets 403 insufficient_role.
        let refused = try await c.request("POST", "/v1/devices", token: viewer.token, json: Self.registration)
        #expect(refused.status == 403)
        #expect(refused.problemCode == "insufficient_role")
        #expect(refused.isProblem)
        #expect(try c.count("devices") == 0)
        let created = try await c.request("POST", "/v1/devices", token: op.token, json: Self.registration)
        #expect(created.status == 201)
        let id = try #require((created.object?["device"] as? [String: Any])?["id"] as? String)
        #expect(try await c.request("PATCH", "/v1/devices/\(id)", token: op.token, json: #"{"name": "cam-2"}"#).status == 200)
        // Deletes: admin only.
        let opDelete = try await c.request("DELETE", "/v1/devices/\(id)", token: op.token)
        #expect(opDelete.status == 403)
        #expect(opDelete.problemCode == "insufficient_role")
        #expect(try await c.request("DELETE", "/v1/devices/\(id)", token: admin.token).status == 204)
        // Keys: admin only (the bootstrap admin key too).
        #expect(try await c.request("GET", "/v1/api-keys", token: op.token).problemCode == "insufficient_role")
        #expect(try await c.request("POST", "/v1/api-keys", token: op.token, json: #"{"name": "x", "role": "admin"}"#).status == 403)
        #expect(try await c.request("GET", "/v1/api-keys", token: admin.token).status == 200)
        #expect(try await c.request("GET", "/v1/api-keys").status == 200)
        // Models: reads and the package for a viewer; publishing and deleting for an admin only.
        let model = try c.insertModel()
        #expect(try await c.request("GET", "/v1/models/\(model)", token: viewer.token).status == 200)
        #expect(try await c.request("GET", "/v1/models/\(model)/package", token: viewer.token).status == 200)
        #expect(try await c.request("POST", "/v1/models/\(model)/deprecate", token: op.token).status == 403)
        #expect(try await c.request("DELETE", "/v1/models/\(model)", token: op.token).status == 403)
        #expect(try await c.request("DELETE", "/v1/models/\(model)", token: admin.token).status == 204)
        // Credentials of the wrong kind: an API key on an agent route, a device token on an operator route.
        let device = try await c.registerDevice(name: "cam-3")
        #expect(try await c.request("PUT", "/v1/agent/context", token: admin.token, json: "{}").status == 403)
        #expect(try await c.request("GET", "/v1/devices", token: device.token).status == 403)
        // No credential or an unknown one: 401.
        #expect(try await c.request("GET", "/v1/devices", token: nil).status == 401)
        #expect(try await c.request("GET", "/v1/devices", token: "fak_not-a-key").status == 401)
    }

    @Test func theKeyIsShownOnceAndNeverListedOrStored() async throws {
        let c = try TestCoordinator()
        let r = try await c.request("POST", "/v1/api-keys", json: #"{"name": "ci", "role": "operator", "expires_at": "2999-01-01T00:00:00Z"}"#)
        #expect(r.status == 201)
        #expect(r.headers["cache-control"] == "no-store")
        let token = try #require(r.object?["token"] as? String)
        #expect(token.hasPrefix("fak_") && token.count > 40)
        let key = try #require(r.object?["api_key"] as? [String: Any])
        #expect(key["role"] as? String == "operator")
        #expect(key["expires_at"] as? String == "2999-01-01T00:00:00.000000Z")
        let list = try await c.request("GET", "/v1/api-keys")
        #expect(list.status == 200)
        #expect(!list.text.contains(token))
        #expect(list.text.contains("\"name\":\"ci\""))
        #expect(((list.object?["items"] as? [[String: Any]]) ?? []).count == 1)
        // Only the digest is stored: no column of the row holds the key.
        let row = try c.sql("SELECT row_to_json(k)::text AS j, encode(key_sha256, 'hex') AS d FROM api_keys k").rows[0]
        #expect(!(try row.decode("j", as: String.self)).contains(token))
        let digest = try c.sql("SELECT encode(sha256(convert_to(\(token), 'UTF8')), 'hex') AS d").rows[0].decode("d", as: String.self)
        #expect(try row.decode("d", as: String.self) == digest)
        #expect(try await c.request("GET", "/v1/devices", token: token).status == 200)
    }

    @Test func revokedAndExpiredKeysAreRefusedWith401() async throws {
        let c = try TestCoordinator()
        let revoked = try await Self.createKey(c, role: "admin", name: "to-revoke")
        #expect(try await c.request("GET", "/v1/devices", token: revoked.token).status == 200)
        #expect(try await c.request("DELETE", "/v1/api-keys/\(revoked.id)").status == 204)
        let afterRevoke = try await c.request("GET", "/v1/devices", token: revoked.token)
        #expect(afterRevoke.status == 401)
        #expect(afterRevoke.problemCode == "api_key_revoked")
        #expect(try await c.request("DELETE", "/v1/api-keys/\(UUID().uuidString)").status == 404)

        let expiring = try await Self.createKey(c, role: "viewer", name: "to-expire")
        #expect(try await c.request("GET", "/v1/devices", token: expiring.token).status == 200)
        _ = try c.sql("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = \(UUID(uuidString: expiring.id)!)")
        let expired = try await c.request("GET", "/v1/devices", token: expiring.token)
        #expect(expired.status == 401)
        #expect(expired.problemCode == "api_key_expired")
    }

    @Test func badKeyRequestsAre422NamingTheFieldAndWriteNothing() async throws {
        let c = try TestCoordinator()
        let cases: [(String, String)] = [
            (#"{"role": "viewer"}"#, "name"),
            (#"{"name": "x", "role": "root"}"#, "role"),
            (#"{"name": "x"}"#, "role"),
            (#"{"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}"#, "expires_at"),
            (#"{"name": "", "role": "viewer"}"#, "name"),
        ]
        for (body, field) in cases {
            let r = try await c.request("POST", "/v1/api-keys", json: body)
            #expect(r.status == 422, "\(body)")
            #expect(r.problemFields.contains(field), "\(body): \(r.text)")
        }
        #expect(try c.count("api_keys") == 0)
    }

    @Test func rotatingADeviceTokenKillsTheOldOneAtOnce() async throws {
        let c = try TestCoordinator()
        let device = try await c.registerDevice(name: "rotating")
        #expect(try await c.request("PUT", "/v1/agent/context", token: device.token, json: #"{"battery_pct": 50}"#).status == 200)
        let viewer = try await Self.createKey(c, role: "viewer")
        #expect(try await c.request("POST", "/v1/devices/\(device.id)/token", token: viewer.token).status == 403)
        let op = try await Self.createKey(c, role: "operator")
        let r = try await c.request("POST", "/v1/devices/\(device.id)/token", token: op.token)
        #expect(r.status == 200)
        let fresh = try #require(r.object?["token"] as? String)
        #expect(fresh != device.token && fresh.hasPrefix("fad_"))
        #expect(try await c.request("PUT", "/v1/agent/context", token: device.token, json: #"{"battery_pct": 40}"#).status == 401)
        #expect(try await c.request("PUT", "/v1/agent/context", token: fresh, json: #"{"battery_pct": 40}"#).status == 200)
        #expect(try await c.request("POST", "/v1/devices/\(UUID().uuidString)/token", token: op.token).status == 404)
    }

    /// Every operation of openapi.yaml states the role the route was registered with (`x-required-role`).
    @Test func specRolesEqualTheRouteTable() throws {
        let c = try TestCoordinator()
        let registered = c.app.services.routeAccess.entries
        var spec: [String: String] = [:]
        var path: String?
        var operation: String?
        var inPaths = false
        for line in try String(contentsOfFile: "openapi/openapi.yaml", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, let first = line.first, first != " " { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":"), let path {
                operation = "\(line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()) \(path)"
            } else if let operation, line.hasPrefix("      x-required-role:") {
                spec[operation] = line.dropFirst("      x-required-role:".count).trimmingCharacters(in: .whitespaces)
            }
        }
        let served = c.app.routes.map { "\($0.method) \($0.pattern)" }
        #expect(served.count > 30)
        for route in served {
            #expect(spec[route] == (registered[route]?.name ?? "open"), "\(route)")
        }
        #expect(Set(spec.keys) == Set(served))
        #expect(registered["DELETE /v1/devices/{id}"] == .admin)
        #expect(registered["GET /v1/agent/jobs/next"] == .device)
    }
}
