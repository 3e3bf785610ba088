import Coordinator
import CoordinatorDomain
import Foundation
import PostgresClient
import Synchronization
import Testing

/// The job queue's promises under the failures black-box testing found (issue 10): attempt numbers only rise,
/// follow-ups of a result survive a failed request, leases follow the database's clock, rescue wakes the device,
/// retried creations compare canonical JSON, UUIDs are lower case on the wire, and the agent outlives an outage.
/// All through the real coordinator on a real PostgreSQL (and the real agent executable).
@Suite struct JobQueueHardeningTests {
    func domainBody(model: String, label: String = "t", canary: Double = 100, wave: Double = 50, timeout: Int = 600,
                    lease: Int = 60, attempts: Int = 3, minExecuted: Int = 50) -> String {
        """
        {"name": "fog", "model_id": "\(model)", "selector": {"labels": {"fleet": "\(label)"}},
         "rollout": {"canary_pct": \(canary), "wave_size_pct": \(wave), "success_threshold_pct": 50},
         "abort": {"failure_threshold_pct": 50, "min_executed": \(minExecuted)},
         "job": {"loss": "tent", "steps": 20, "timeout_s": \(timeout), "max_attempts": \(attempts), "lease_s": \(lease)}}
        """
    }

    func lease(_ c: TestCoordinator, _ token: String) async throws -> [String: Any]? {
        let r = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: token)
        if r.status == 204 { return nil }
        guard r.status == 200 else { throw TestFailure("lease: \(r.status) \(r.text)") }
        return r.object
    }

    /// Uploads the attempt's (honest) adapters, as an agent does before it reports a succeeded `adapt`, then the result.
    func succeed(_ c: TestCoordinator, _ token: String, job: String, attempt: Int) async throws -> TestResponse {
        _ = try await putArtifact(c, token, job: job, attempt: attempt)
        return try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: token, json: """
            {"attempt": \(attempt), "outcome": "succeeded", "metrics": {"entropy_before": 1.2, "entropy_after": 0.8,
             "accuracy_before": 0.5, "accuracy_after": 0.7, "train_seconds": 1.5, "samples": 100, "steps": 20}}
            """)
    }

    func heartbeat(_ c: TestCoordinator, _ token: String, job: String, attempt: Int) async throws -> TestResponse {
        try await c.request("POST", "/v1/agent/jobs/\(job)/heartbeat", token: token, json: #"{"attempt": \#(attempt)}"#)
    }

    /// An artifact the job's combination allows, so that only the attempt decides whether it is taken.
    func putArtifact(_ c: TestCoordinator, _ token: String, job: String, attempt: Int) async throws -> TestResponse {
        try await c.uploadArtifact(job: job, attempt: attempt, token: token, tensors: TestCoordinator.fixtureArtifact())
    }

    /// Waits for a condition with a generous bound (CI is slow); records an issue when it never holds.
    func waitFor(_ what: String, timeout: Double = 90, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("timed out waiting for \(what)")
    }

    // MARK: item 10: attempt numbers only rise

    @Test func retryFailedGivesANewAttemptNumberSoTheOldWorkerIsRefused() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "retry", labels: ["fleet": "t"])
        let created = try await c.request("POST", "/v1/domains", json: domainBody(model: model, attempts: 1))
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let old = try #require(try await lease(c, token))
        let job = try #require(old["id"] as? String)
        #expect(old["attempt"] as? Int == 1)
        // Attempt 1 goes silent past its lease: the only attempt of the budget times out.
        _ = try c.sql("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")
        try await waitFor("the job to time out") { try c.count("jobs WHERE state = 'timed_out'") == 1 }
        let retried = try await c.request("POST", "/v1/campaigns/\(campaign)/retry-failed")
        #expect(retried.status == 200, "\(retried.text)")
        var fresh: [String: Any]?
        try await waitFor("the retry to be leasable") {
            fresh = try await lease(c, token)
            return fresh != nil
        }
        let attempt = try #require(fresh?["attempt"] as? Int)
        #expect(attempt > 1, "the retry reused attempt number \(attempt)")
        #expect(fresh?["id"] as? String == job)

        // The worker of attempt 1 comes back: every write of it is refused.
        let lateBeat = try await heartbeat(c, token, job: job, attempt: 1)
        #expect(lateBeat.status == 409)
        #expect(lateBeat.problemCode == "lease_lost")
        let lateArtifact = try await putArtifact(c, token, job: job, attempt: 1)
        #expect(lateArtifact.status == 409)
        #expect(lateArtifact.problemCode == "stale_attempt")
        let lateResult = try await succeed(c, token, job: job, attempt: 1)
        #expect(lateResult.status == 409)
        #expect(lateResult.problemCode == "stale_attempt")
        #expect(try c.count("job_artifacts") == 0)

        // The real worker of the new attempt is served.
        #expect(try await heartbeat(c, token, job: job, attempt: attempt).status == 200)
        #expect(try await putArtifact(c, token, job: job, attempt: attempt).status == 201)
        #expect(try await succeed(c, token, job: job, attempt: attempt).status == 200)
        #expect(try c.count("job_artifacts WHERE attempt = \(attempt)") == 1)
        #expect(try c.count("jobs WHERE state = 'succeeded' AND attempt = \(attempt)") == 1)
    }

    // MARK: item 11: follow-ups survive a failure after the commit

    @Test func followUpsThatFailAfterTheCommitAreFinishedAndTheCampaignAdvances() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        var tokens: [String] = []
        for i in 0..<2 { tokens.append(try await c.registerDevice(name: "f\(i)", labels: ["fleet": "t"]).token) }
        let created = try await c.request("POST", "/v1/domains", json: domainBody(model: model, canary: 50, wave: 50))
        let campaign = try #require(created.object?["campaign"] as? [String: Any])
        let campaignID = try #require(campaign["id"] as? String)
        try #require(campaign["wave_count"] as? Int == 2)

        // Fault injection in the real database: the first attempt to finish a success's follow-ups fails, and so
        // does the first wave release (each after the result itself committed).
        for name in ["fault_followup", "fault_release"] {
            _ = try c.sql("CREATE SEQUENCE \(unsafeRaw: name)")
            _ = try c.sql("""
                CREATE FUNCTION \(unsafeRaw: name)() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF nextval('\(unsafeRaw: name)') = 1 THEN RAISE EXCEPTION 'injected fault (\(unsafeRaw: name))'; END IF;
                    RETURN NEW;
                END $$
                """)
        }
        _ = try c.sql("""
            CREATE TRIGGER fault_followup BEFORE UPDATE ON jobs FOR EACH ROW
            WHEN (OLD.followup_pending AND NOT NEW.followup_pending) EXECUTE FUNCTION fault_followup()
            """)
        _ = try c.sql("""
            CREATE TRIGGER fault_release BEFORE UPDATE ON campaigns FOR EACH ROW
            WHEN (NEW.released_wave <> OLD.released_wave) EXECUTE FUNCTION fault_release()
            """)

        var canary: (token: String, job: [String: Any])?
        for t in tokens { if let job = try await lease(c, t) { canary = (t, job) } }
        let (token, job) = try #require(canary)
        let jobID = try #require(job["id"] as? String)
        let first = try await succeed(c, token, job: jobID, attempt: 1)
        #expect(first.status == 200, "\(first.text)")
        #expect(first.object?["state"] as? String == "succeeded")
        // The agent retries (as if the answer had been lost): accepted again, recorded once.
        let replay = try await succeed(c, token, job: jobID, attempt: 1)
        #expect(replay.status == 200, "\(replay.text)")
        #expect(replay.object?["state"] as? String == "recorded")

        try await waitFor("the next wave to be released") {
            try await c.request("GET", "/v1/campaigns/\(campaignID)").object?["released_wave"] as? Int == 1
        }
        #expect(try c.count("jobs WHERE followup_pending") == 0)
        #expect(try c.count("device_metrics WHERE job_id = '\(jobID)'") == 1)
        // Both faults fired (the test injected what it meant to).
        #expect(try c.sql("SELECT last_value FROM fault_followup").rows[0].decode("last_value", as: Int.self) >= 2)
        #expect(try c.sql("SELECT last_value FROM fault_release").rows[0].decode("last_value", as: Int.self) >= 2)

        let other = try #require(tokens.first { $0 != token })
        var second: [String: Any]?
        try await waitFor("the second wave's job") {
            second = try await lease(c, other)
            return second != nil
        }
        let secondID = try #require(second?["id"] as? String)
        #expect(try await succeed(c, other, job: secondID, attempt: 1).status == 200)
        try await waitFor("the campaign to complete") {
            try await c.request("GET", "/v1/campaigns/\(campaignID)").object?["status"] as? String == "completed"
        }
        #expect(try c.count("device_metrics WHERE job_id IS NOT NULL") == 2)
    }

    // MARK: item 14: leases follow the database's clock

    @Test func aReplicaWhoseClockRunsAheadDoesNotRevokeAHealthyLease() async throws {
        let a = try TestCoordinator()
        let skew: TimeInterval = 45
        let b = try TestCoordinator(database: a.database, clock: WallClock { Date().addingTimeInterval(skew) })
        let model = try a.insertModel()
        let (_, token) = try await a.registerDevice(name: "steady", labels: ["fleet": "t"])
        _ = try await b.request("POST", "/v1/domains", json: domainBody(model: model, lease: 30))
        // Created by the replica that runs ahead, the job is still ready at once by the database's clock.
        let leased = try #require(try await lease(a, token))
        let job = try #require(leased["id"] as? String)
        // Several maintenance ticks of the skewed replica (each would revoke a 30 s lease by a 45 s-ahead clock).
        try await Task.sleep(for: .seconds(3))
        #expect(try a.count("jobs WHERE state IN ('leased', 'running') AND attempt = 1 AND errors = '[]'::jsonb") == 1)
        let beatA = try await heartbeat(a, token, job: job, attempt: 1)
        #expect(beatA.status == 200, "\(beatA.text)")
        let beatB = try await heartbeat(b, token, job: job, attempt: 1)
        #expect(beatB.status == 200, "\(beatB.text)")
        try await Task.sleep(for: .seconds(2))
        #expect(try await succeed(b, token, job: job, attempt: 1).status == 200)
        #expect(try a.count("jobs WHERE state = 'succeeded' AND attempt = 1") == 1)
    }

    // MARK: item 16

    @Test func aRequeuedJobWakesItsDeviceAtRescueAndWhenItsBackoffRunsOut() async throws {
        let c = try TestCoordinator()
        // (payload, when it arrived): a wake-up counts only if it came when it should, however late this task runs.
        let payloads = Mutex<[(String, Date)]>([])
        let listener = try PostgresListener(configuration: c.database, channels: ["fleetadapt_jobs"], onNotification: { _, payload in
            payloads.withLock { $0.append((payload, Date())) }
        })
        defer { listener.stop() }
        let model = try c.insertModel()
        let (device, token) = try await c.registerDevice(name: "rescued", labels: ["fleet": "t"])
        _ = try await c.request("POST", "/v1/domains", json: domainBody(model: model))
        _ = try #require(try await lease(c, token))
        // (The new job's readiness was announced too; only what comes after the rescue counts.)
        let expired = try c.sql("UPDATE jobs SET lease_expires_at = now() - interval '1 second' RETURNING clock_timestamp() AS at")
            .rows[0].decode("at", as: Date.self)
        try await waitFor("a NOTIFY naming the rescued device") {
            payloads.withLock { $0 }.contains { $0.0 == device && $0.1 >= expired }
        }
        #expect(try c.count("jobs WHERE state = 'queued'") == 1)
        // A retry whose backoff has some time to run: its device is woken when it runs out, not only at rescue.
        let ready = try c.sql("UPDATE jobs SET run_after = now() + interval '1.5 seconds' RETURNING run_after")
            .rows[0].decode("run_after", as: Date.self)
        try await waitFor("a NOTIFY naming the device once its retry is ready") {
            payloads.withLock { $0 }.contains { $0.0 == device && $0.1 >= ready }
        }
        #expect(try c.count("jobs WHERE state = 'queued' AND run_after <= now()") == 1)
    }

    @Test func everyRecordedErrorCarriesItsAttemptAsAnInteger() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "errs", labels: ["fleet": "t"])
        _ = try await c.request("POST", "/v1/domains", json: domainBody(model: model))
        let first = try #require(try await lease(c, token))
        let job = try #require(first["id"] as? String)
        let failed = try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: token,
                                         json: #"{"attempt": 1, "outcome": "failed", "error": "out of memory"}"#)
        #expect(failed.status == 200)
        var second: [String: Any]?
        try await waitFor("the retry") {
            second = try await lease(c, token)
            return second != nil
        }
        #expect(second?["attempt"] as? Int == 2)
        _ = try c.sql("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")
        try await waitFor("the rescue") { try c.count("jobs WHERE jsonb_array_length(errors) = 2") == 1 }
        let rows = try c.sql("""
            SELECT e->>'error' AS error, jsonb_typeof(e->'attempt') AS type, (e->>'attempt')::int AS attempt, e->>'at' AS at
            FROM jobs, jsonb_array_elements(errors) e ORDER BY (e->>'attempt')::int
            """).rows
        #expect(rows.count == 2)
        for (i, row) in rows.enumerated() {
            #expect(try row.decode("type", as: String.self) == "number")
            #expect(try row.decode("attempt", as: Int.self) == i + 1)
            let at = try row.decode("at", as: String.self)
            #expect(at.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z/) != nil, "\(at)")
        }
        #expect(try rows[0].decode("error", as: String.self) == "out of memory")
        #expect(try rows[1].decode("error", as: String.self) == "lease expired")
    }

    @Test func anIdempotentRetryMayOrderItsKeysDifferently() async throws {
        let c = try TestCoordinator()
        let body = #"{"name": "canon", "hardware": {"class": "phone", "gflops": 5, "memory_mb": 2048}, "constraints": {"latency_budget_ms": 50, "memory_budget_mb": 100}}"#
        let reordered = """
            {
              "constraints": {"memory_budget_mb": 100, "latency_budget_ms": 50},
              "hardware": {"memory_mb": 2048, "gflops": 5, "class": "phone"},
              "name": "canon"
            }
            """
        let first = try await c.request("POST", "/v1/devices", json: body, headers: ["Idempotency-Key": "canon-1"])
        #expect(first.status == 201)
        let second = try await c.request("POST", "/v1/devices", json: reordered, headers: ["Idempotency-Key": "canon-1"])
        #expect(second.status == 201, "\(second.text)")
        #expect(second.headers["idempotent-replayed"] == "true")
        let id1 = (first.object?["device"] as? [String: Any])?["id"] as? String
        let id2 = (second.object?["device"] as? [String: Any])?["id"] as? String
        #expect(id1 != nil && id1 == id2)
        #expect(try c.count("devices WHERE name = 'canon'") == 1)
        // A different value under the same key is still refused.
        let other = try await c.request("POST", "/v1/devices", json: reordered.replacingOccurrences(of: "2048", with: "4096"),
                                        headers: ["Idempotency-Key": "canon-1"])
        #expect(other.status == 422)
        #expect(other.problemCode == "idempotency_key_reused")
    }

    // MARK: item 18: UUIDs are lower case on the wire

    /// Every UUID in a raw body, and whether any is not lower case.
    func uuids(in body: Data) -> (all: [String], upper: [String]) {
        let text = String(decoding: body, as: UTF8.self)
        let all = text.matches(of: /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/).map { String($0.output) }
        return (all, all.filter { $0 != $0.lowercased() })
    }

    @Test func uuidsAreLowerCaseInEveryBody() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        let registration = try await c.request("POST", "/v1/devices", json: """
            {"name": "lower", "hardware": {"class": "jetson-tx2", "gflops": 20, "memory_mb": 4096},
             "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}, "labels": {"fleet": "t"}}
            """)
        #expect(registration.status == 201)
        let token = try #require(registration.object?["token"] as? String)
        // A domain that names its model in upper case is accepted (decoding takes either case).
        let created = try await c.request("POST", "/v1/domains", json: domainBody(model: model.uppercased()))
        #expect(created.status == 201, "\(created.text)")
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let view = try await c.request("GET", "/v1/campaigns/\(campaign)")
        let job = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: token)
        #expect(job.status == 200)
        for (what, body) in [("registration", registration.body), ("domain", created.body), ("campaign", view.body), ("job", job.body)] {
            let found = uuids(in: body)
            #expect(!found.all.isEmpty, "\(what) carries no UUID")
            #expect(found.upper.isEmpty, "\(what) has upper-case UUIDs: \(found.upper)")
        }
    }
}

/// Item 12: the real agent executable through a coordinator outage at the end of its job.
@Suite(.serialized) struct AgentOutageTests {
    /// A coordinator with the test model published, one device, and an `adapt` campaign for it (a long lease, so an
    /// outage of a minute keeps the attempt).
    struct Setup {
        var coordinator: TestCoordinator?
        let database: PostgresConfiguration
        let port: Int
        let device: String
        let token: String
        let data: String

        var stateDirectory: String { data + "-state" }
        var saved: [String] { (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? [] }
    }

    func setUp(_ index: Int) async throws -> Setup {
        let c = try TestCoordinator()
        let model = try await FleetAdaptationTests.publish(c)
        let (device, token) = try await c.registerDevice(name: "outage", labels: ["fleet": "outage"])
        let created = try await c.request("POST", "/v1/domains", json: """
            {"name": "contrast", "model_id": "\(model)", "selector": {"labels": {"fleet": "outage"}},
             "rollout": {"canary_pct": 100},
             "job": {"loss": "tent", "steps": 100, "timeout_s": 900, "max_attempts": 3, "batch_size": 32, "learning_rate": 0.002, "lease_s": 600}}
            """)
        #expect(created.status == 201, "\(created.text)")
        return Setup(coordinator: c, database: c.database, port: c.app.port, device: device, token: token,
                     data: try FleetAdaptationTests.deviceData(index))
    }

    /// The agent executable, slowed down so that the job is still training when the coordinator goes, running until
    /// stopped, its log (standard output) in a file.
    func startAgent(_ s: Setup) throws -> (process: Process, log: String) {
        let log = NSTemporaryDirectory() + "fleetadapt-agent-outage-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: FleetAdaptationTests.agentPath)
        agent.arguments = ["--coordinator", "http://127.0.0.1:\(s.port)", "--data-dir", s.data, "--cache-dir", s.data + "-cache",
                           "--poll-wait", "2", "--slowdown", "6", "--max-retry-delay", "2"]
        var env = ProcessInfo.processInfo.environment
        env["FLEETADAPT_TOKEN"] = s.token
        agent.environment = env
        agent.standardOutput = FileHandle(forWritingAtPath: log)
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        return (agent, log)
    }

    func text(_ log: String) -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    func count(_ s: Setup, _ condition: String) throws -> Int {
        let sql = PostgresPool(configuration: s.database, maxConnections: 1)
        defer { sql.close() }
        return try sql.query("SELECT count(*)::bigint AS n FROM jobs WHERE \(unsafeRaw: condition)").rows[0].decode("n", as: Int.self)
    }

    /// Waits until the job runs with its package downloaded (the cache holds it), then stops the coordinator and
    /// waits for the agent's first failed delivery (a line of its log, which must reach the file at once).
    func outageAtTheEndOfTheJob(_ s: inout Setup, log: String) async throws {
        func started() throws -> Bool {
            try count(s, "state = 'running'") == 1 && !((try? FileManager.default.contentsOfDirectory(atPath: s.data + "-cache")) ?? []).isEmpty
        }
        let deadline = Date().addingTimeInterval(300)
        while try !started(), Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        try #require(try started(), "the job never started running: \(text(log))")
        s.coordinator = nil
        while !text(log).contains("/artifact?attempt=1 failed"), Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(text(log).contains("/artifact?attempt=1 failed"), "the agent never tried to deliver: \(text(log))")
    }

    /// Waits for the job to succeed after the coordinator came back, and checks what was recorded.
    func expectDelivered(_ s: Setup, by coordinator: TestCoordinator, log: String) async throws {
        let deadline = Date().addingTimeInterval(180)
        while try count(s, "state = 'succeeded'") == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
        #expect(try count(s, "state = 'succeeded' AND attempt = 1 AND result->>'outcome' = 'succeeded' AND device_id = '\(s.device)'") == 1,
                "\(text(log))")
        #expect(try coordinator.count("job_artifacts WHERE attempt = 1") == 1)
        #expect(s.saved.isEmpty, "\(s.saved)")
    }

    @Test func theAgentKeepsItsResultThroughACoordinatorOutageAndDeliversIt() async throws {
        var s = try await setUp(7)
        let (agent, log) = try startAgent(s)
        defer { if agent.isRunning { agent.terminate() } }
        try await outageAtTheEndOfTheJob(&s, log: log)
        // The coordinator stays away well past the agent's old retry budget (8 tries, about 25 s).
        try await Task.sleep(for: .seconds(30))
        #expect(agent.isRunning, "the agent exited during the outage: \(text(log))")
        #expect(s.saved.contains { $0.hasSuffix(".json") } && s.saved.contains { $0.hasSuffix(".artifact") }, "\(s.saved)")

        // Back on the same port and database: the saved result is delivered, as the success it was.
        let back = try TestCoordinator(database: s.database, port: s.port)
        try await expectDelivered(s, by: back, log: log)
        #expect(agent.isRunning, "the agent exited: \(text(log))")
        agent.terminate()
        agent.waitUntilExit()
        #expect(agent.terminationStatus == 0, "\(text(log))")
    }

    @Test func aResultSavedDuringAnOutageIsDeliveredByTheRestartedAgent() async throws {
        var s = try await setUp(8)
        let (agent, log) = try startAgent(s)
        defer { if agent.isRunning { agent.terminate() } }
        try await outageAtTheEndOfTheJob(&s, log: log)
        // Stopped while it cannot deliver: it exits cleanly and keeps the result on disk.
        agent.terminate()
        agent.waitUntilExit()
        #expect(agent.terminationStatus == 0, "\(text(log))")
        #expect(s.saved.contains { $0.hasSuffix(".json") } && s.saved.contains { $0.hasSuffix(".artifact") }, "\(s.saved)")

        // A new agent process starts before the coordinator is back, and delivers the saved result once it is.
        let (restarted, log2) = try startAgent(s)
        defer { if restarted.isRunning { restarted.terminate() } }
        let back = try TestCoordinator(database: s.database, port: s.port)
        try await expectDelivered(s, by: back, log: log2)
        #expect(text(log2).contains("delivering the saved result"), "\(text(log2))")
        #expect(restarted.isRunning, "the restarted agent exited: \(text(log2))")
        restarted.terminate()
        restarted.waitUntilExit()
        #expect(restarted.terminationStatus == 0, "\(text(log2))")
    }
}
