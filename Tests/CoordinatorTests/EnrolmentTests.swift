import Foundation
import Testing

/// Enrolment against the real coordinator over HTTP, and a real `fleetadapt-agent` enrolling from a token file.
@Suite struct EnrolmentTests {
    static let enrolment = """
        {"name": "pi-7", "hardware": {"class": "raspberry-pi-4", "gflops": 10, "memory_mb": 2048},
         "constraints": {"latency_budget_ms": 50, "memory_budget_mb": 200}}
        """

    static func createToken(_ c: TestCoordinator, labels: String = #"{"site": "lab"}"#, maxUses: Int? = nil,
                            token key: String = TestCoordinator.adminKey) async throws -> (id: String, token: String) {
        let uses = maxUses.map { #", "max_uses": \#($0)"# } ?? ""
        let r = try await c.request("POST", "/v1/enrolment-tokens", token: key,
                                    json: #"{"labels": \#(labels), "expires_at": "2999-01-01T00:00:00Z"\#(uses)}"#)
        guard r.status == 201, let view = r.object?["enrolment_token"] as? [String: Any], let id = view["id"] as? String,
              let token = r.object?["token"] as? String else { throw TestFailure("enrolment token: \(r.status) \(r.text)") }
        return (id, token)
    }

    @Test func aDeviceEnrolsWithTheTokensLabelsAndGetsItsOwnToken() async throws {
        let c = try TestCoordinator()
        let op = try await AccessControlTests.createKey(c, role: "operator")
        let viewer = try await AccessControlTests.createKey(c, role: "viewer")
        #expect(try await c.request("POST", "/v1/enrolment-tokens", token: viewer.token,
                                    json: #"{"expires_at": "2999-01-01T00:00:00Z"}"#).status == 403)
        let enrolment = try await Self.createToken(c, maxUses: 1, token: op.token)
        #expect(enrolment.token.hasPrefix("fae_"))
        #expect(!(try await c.request("GET", "/v1/enrolment-tokens", token: op.token).text.contains(enrolment.token)))

        // Labels belong to the token: a body with labels is refused, naming the field, and spends no use.
        let withLabels = try await c.request("POST", "/v1/agent/enrol", token: enrolment.token,
                                             json: #"{"name": "x", "hardware": {"class": "mcu", "gflops": 1, "memory_mb": 1}, "constraints": {"latency_budget_ms": 1, "memory_budget_mb": 1}, "labels": {"site": "other"}}"#)
        #expect(withLabels.status == 422)
        #expect(withLabels.problemFields == ["labels"])
        #expect(try c.count("devices") == 0)

        let r = try await c.request("POST", "/v1/agent/enrol", token: enrolment.token, json: Self.enrolment)
        #expect(r.status == 201)
        let device = try #require(r.object?["device"] as? [String: Any])
        #expect(device["labels"] as? [String: String] == ["site": "lab"])
        let token = try #require(r.object?["token"] as? String)
        #expect(try await c.request("PUT", "/v1/agent/context", token: token, json: #"{"battery_pct": 80}"#).status == 200)
        // The enrolment token is not a device token, and one use was all it had.
        #expect(try await c.request("PUT", "/v1/agent/context", token: enrolment.token, json: "{}").status == 401)
        let again = try await c.request("POST", "/v1/agent/enrol", token: enrolment.token, json: Self.enrolment)
        #expect(again.status == 401)
        #expect(again.problemCode == "enrolment_token_used_up")
        #expect(try c.count("devices") == 1)

        // Revoked and expired tokens, and credentials of other kinds, are refused.
        let revoked = try await Self.createToken(c, token: op.token)
        #expect(try await c.request("POST", "/v1/enrolment-tokens/\(revoked.id)/revoke", token: op.token).status == 200)
        #expect(try await c.request("POST", "/v1/agent/enrol", token: revoked.token, json: Self.enrolment).problemCode == "enrolment_token_revoked")
        let expiring = try await Self.createToken(c, token: op.token)
        _ = try c.sql("UPDATE enrolment_tokens SET expires_at = now() - interval '1 second' WHERE id = \(UUID(uuidString: expiring.id)!)")
        #expect(try await c.request("POST", "/v1/agent/enrol", token: expiring.token, json: Self.enrolment).problemCode == "enrolment_token_expired")
        #expect(try await c.request("POST", "/v1/agent/enrol", token: TestCoordinator.adminKey, json: Self.enrolment).status == 401)
        #expect(try await c.request("POST", "/v1/agent/enrol", token: token, json: Self.enrolment).status == 401)
        #expect(try c.count("devices") == 1)
    }

    @Test func badEnrolmentTokenRequestsAre422NamingTheField() async throws {
        let c = try TestCoordinator()
        for (body, field) in [("{}", "expires_at"), (#"{"expires_at": "2001-01-01T00:00:00Z"}"#, "expires_at"),
                              (#"{"expires_at": "2999-01-01T00:00:00Z", "max_uses": 0}"#, "max_uses")] {
            let r = try await c.request("POST", "/v1/enrolment-tokens", json: body)
            #expect(r.status == 422, "\(body)")
            #expect(r.problemFields.contains(field), "\(body): \(r.text)")
        }
        #expect(try c.count("enrolment_tokens") == 0)
    }

    /// A real agent with `--enrol-token-file` and no stored token enrols, keeps its token 0600 in its state
    /// directory, and on its next start uses that token instead of enrolling again (the token allowed one use).
    @Test func theAgentEnrolsFromATokenFileAndReusesItsStoredToken() async throws {
        let c = try TestCoordinator()
        let enrolment = try await Self.createToken(c, labels: #"{"site": "agent-lab"}"#, maxUses: 1)
        let base = NSTemporaryDirectory() + "fleetadapt-enrol-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let data = try FleetAdaptationTests.deviceData(7)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let tokenFile = base + "/enrol-token"
        try (enrolment.token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let stored = base + "/state/device-token"

        func startAgent() throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: FleetAdaptationTests.agentPath)
            p.arguments = ["--coordinator", c.baseURL, "--data-dir", data, "--state-dir", base + "/state",
                           "--enrol-token-file", tokenFile, "--name", "enrolled-pi", "--hardware-class", "raspberry-pi-4",
                           "--gflops", "10", "--memory-mb", "2048", "--latency-budget-ms", "50", "--memory-budget-mb", "200",
                           "--poll-wait", "1"]
            var env = ProcessInfo.processInfo.environment
            env["FLEETADAPT_TOKEN"] = nil
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        func waitFor(_ what: String, _ condition: () async throws -> Bool) async throws {
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                if try await condition() { return }
                try await Task.sleep(for: .milliseconds(200))
            }
            Issue.record("timed out waiting for \(what)")
        }
        func devices() async throws -> [[String: Any]] {
            (try await c.request("GET", "/v1/devices?labels=site=agent-lab").object?["items"] as? [[String: Any]]) ?? []
        }

        let first = try startAgent()
        try await waitFor("the agent to enrol and report its context") {
            try await devices().first?["context"] != nil && FileManager.default.fileExists(atPath: stored)
        }
        first.terminate()
        first.waitUntilExit()
        let mode = try FileManager.default.attributesOfItem(atPath: stored)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let token = try String(contentsOfFile: stored, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasPrefix("fad_"))
        let enrolled = try await devices()
        #expect(enrolled.count == 1)
        #expect(enrolled.first?["name"] as? String == "enrolled-pi")
        let id = try #require(enrolled.first?["id"] as? String)
        let seen = enrolled.first?["last_seen_at"] as? String

        // Second start: the stored token, no second enrolment (which the used-up token would refuse).
        let second = try startAgent()
        try await waitFor("the restarted agent to be seen with its stored token") {
            let device = try await c.request("GET", "/v1/devices/\(id)").object
            return device?["last_seen_at"] as? String != seen && second.isRunning
        }
        second.terminate()
        second.waitUntilExit()
        #expect(try await devices().count == 1)
        #expect(try String(contentsOfFile: stored, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == token)
        #expect(try c.sql("SELECT uses FROM enrolment_tokens").rows[0].decode("uses", as: Int.self) == 1)
    }
}
