import Foundation
import PostgresClient
import Testing
import TestSupport

/// A real coordinator process with `--log-format json`: every line it writes is a JSON object, each request gets
/// one access line with the route's pattern and the actor, and neither the admin key nor a device token is ever
/// written, whatever the requests carry.
@Suite struct StructuredLogTests {
    @Test func jsonLinesWithAccessFieldsAndNoSecrets() async throws {
        let adminKey = "ops-log-test-admin-key-5f0c2d9e8b7a6143"
        let database = try EmbeddedPostgres.sharedForTests()
        let coordinator = try CoordinatorProcess(arguments: ["--database-url", databaseURL(database), "--log-format", "json"],
                                                 environment: ["FLEETADAPT_ADMIN_KEY": adminKey])
        var stopped = false
        defer { if !stopped { _ = coordinator.stop() } }
        let listening = try coordinator.waitFor("listening on")
        guard let portText = listening.split(separator: ":").last?.prefix(while: { $0.isNumber }), let port = Int(portText) else {
            throw TestFailure("no port in \(listening)")
        }
        let base = "http://127.0.0.1:\(port)"
        let registered = try await TestCoordinator.send("POST", url: base + "/v1/devices", token: adminKey, body: Data("""
            {"name": "log-cam", "hardware": {"class": "jetson-tx2", "gflops": 20, "memory_mb": 4096},
             "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}, "labels": {}}
            """.utf8), headers: ["Content-Type": "application/json"])
        #expect(registered.status == 201, "\(registered.text)")
        let object = try JSONSerialization.jsonObject(with: registered.body) as? [String: Any]
        let token = try #require(object?["token"] as? String)
        let device = try #require((object?["device"] as? [String: Any])?["id"] as? String)
        let config = try await TestCoordinator.send("GET", url: base + "/v1/agent/config", token: token)
        #expect(config.status < 500)
        let wrong = try await TestCoordinator.send("GET", url: base + "/v1/devices", token: token + "x")
        #expect(wrong.status == 401)
        let listed = try await TestCoordinator.send("GET", url: base + "/v1/devices/\(device)", token: adminKey,
                                                    headers: ["X-Request-Id": "ops-log-req-1"])
        #expect(listed.status == 200)
        // The access line is written when the request completes; wait for the last one.
        _ = try coordinator.waitFor("ops-log-req-1")
        let output = coordinator.stop()
        stopped = true

        #expect(!output.contains(adminKey), "the admin key was logged")
        #expect(!output.contains(token), "a device token was logged")
        var access: [[String: Any]] = []
        for line in output.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                Issue.record("not a JSON line: \(line)")
                continue
            }
            #expect(object["time"] is String && object["level"] is String && object["message"] is String, "\(line)")
            if object["message"] as? String == "request" { access.append(object) }
        }
        let line = try #require(access.first { $0["request_id"] as? String == "ops-log-req-1" }, "\(output)")
        #expect(line["method"] as? String == "GET")
        #expect(line["route"] as? String == "/v1/devices/{id}")
        #expect(line["status"] as? Int == 200)
        #expect((line["bytes"] as? Int ?? 0) > 0)
        #expect(line["duration_seconds"] is Double || line["duration_seconds"] is Int)
        // Who and from where, kept after the request was handed to its handler.
        #expect(line["client"] as? String == "127.0.0.1", "\(line)")
        #expect(line["actor"] as? String == "admin-key", "\(line)")
        let agentLine = try #require(access.first { $0["route"] as? String == "/v1/agent/config" }, "\(output)")
        #expect(agentLine["actor"] as? String == "device:\(device)", "\(agentLine)")
        let post = try #require(access.first { $0["route"] as? String == "/v1/devices" && $0["method"] as? String == "POST" })
        #expect(post["status"] as? Int == 201)
        let refused = try #require(access.first { $0["status"] as? Int == 401 })
        #expect(refused["level"] as? String == "notice")
    }
}
