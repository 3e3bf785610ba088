@testable import Coordinator
import CoordinatorDomain
import Foundation
import PostgresClient
import Synchronization
import Testing

/// A clock the test moves by hand: the coordinator's scheduler reads its "now" from it (`WallClock`), so windows are
/// tested without sleeping.
final class ManualClock: Sendable {
    private let value: Mutex<Date>
    init(_ start: Date) { value = Mutex(start) }
    var now: Date { value.withLock { $0 } }
    func set(_ date: Date) { value.withLock { $0 = date } }
    var wallClock: WallClock { WallClock { [self] in self.now } }
}

/// Operator controls of one job, schedules and continuous targeting through the real coordinator and database (the
/// agent side spoken over HTTP with the devices' tokens), and the bad inputs of each.
@Suite(.serialized) struct RolloutScheduleTests {
    static func jobs(_ c: TestCoordinator, _ campaign: String) async throws -> [[String: Any]] {
        let r = try await c.request("GET", "/v1/campaigns/\(campaign)/jobs")
        guard r.status == 200, let items = r.object?["items"] as? [[String: Any]] else { throw TestFailure("jobs: \(r.status) \(r.text)") }
        return items
    }

    static func events(_ c: TestCoordinator, _ path: String) async throws -> [[String: Any]] {
        var all: [[String: Any]] = [], after: String?
        for _ in 0..<50 {
            let r = try await c.request("GET", "\(path)/events?limit=2" + (after.map { "&after=\($0)" } ?? ""))
            guard r.status == 200, let items = r.object?["items"] as? [[String: Any]] else { throw TestFailure("events: \(r.status) \(r.text)") }
            all += items
            guard let next = r.object?["next"] as? String else { break }
            after = next
        }
        return all
    }

    static func campaign(_ c: TestCoordinator, _ body: String) async throws -> String {
        let r = try await c.request("POST", "/v1/domains", json: body)
        guard r.status == 201, let id = (r.object?["campaign"] as? [String: Any])?["id"] as? String else {
            throw TestFailure("campaign: \(r.status) \(r.text)")
        }
        return id
    }

    static func body(_ model: String, label: String, canary: Int = 100, extra: String = "") -> String {
        """
        {"name": "measure", "model_id": "\(model)", "selector": {"labels": {"fleet": "\(label)"}},
         "rollout": {"canary_pct": \(canary), "wave_size_pct": 50, "success_threshold_pct": 50},
         "job": {"kind": "profile", "timeout_s": 600, "max_attempts": 1}\(extra)}
        """
    }

    @Test func anOperatorCancelsOneJobAndALeasedOneIsFenced() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        let a = try await c.registerDevice(name: "a", labels: ["fleet": "cancel"])
        let b = try await c.registerDevice(name: "b", labels: ["fleet": "cancel"])
        let campaign = try await Self.campaign(c, Self.body(model, label: "cancel"))
        let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: a.token)
        #expect(leased.status == 200, "\(leased.text)")
        let jobA = try #require(leased.object?["id"] as? String)
        let attempt = try #require(leased.object?["attempt"] as? Int)
        let jobB = try #require(try await Self.jobs(c, campaign).first { ($0["device_id"] as? String) == b.id }?["id"] as? String)

        let queued = try await c.request("POST", "/v1/campaigns/\(campaign)/jobs/\(jobB)/cancel")
        #expect(queued.status == 200, "\(queued.text)")
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: b.token).status == 204, "a canceled job is not leased")
        let fenced = try await c.request("POST", "/v1/campaigns/\(campaign)/jobs/\(jobA)/cancel")
        #expect(fenced.status == 200, "\(fenced.text)")
        let heartbeat = try await c.request("POST", "/v1/agent/jobs/\(jobA)/heartbeat", token: a.token, json: #"{"attempt": \#(attempt)}"#)
        #expect(heartbeat.status == 409, "\(heartbeat.text)")
        let result = try await c.request("POST", "/v1/agent/jobs/\(jobA)/result", token: a.token,
                                         json: #"{"attempt": \#(attempt), "outcome": "succeeded"}"#)
        #expect(result.status == 409 && result.isProblem, "the fenced agent's result is refused: \(result.text)")
        let states = try await Self.jobs(c, campaign).compactMap { $0["state"] as? String }
        #expect(states == ["canceled", "canceled"])

        // Both counted as not succeeded: the wave's success rate (0%) is under its threshold, so the campaign pauses.
        let view = try await c.request("GET", "/v1/campaigns/\(campaign)")
        #expect(view.object?["status"] as? String == "paused", "\(view.text)")

        let again = try await c.request("POST", "/v1/campaigns/\(campaign)/jobs/\(jobA)/cancel")
        #expect(again.status == 409 && again.problemCode == "invalid_job_state", "\(again.text)")
        let unknownJob = try await c.request("POST", "/v1/campaigns/\(campaign)/jobs/\(UUID().uuidString.lowercased())/cancel")
        #expect(unknownJob.status == 404)
        let unknownCampaign = try await c.request("POST", "/v1/campaigns/\(UUID().uuidString.lowercased())/jobs/\(jobA)/cancel")
        #expect(unknownCampaign.status == 404)
        #expect(try await c.request("POST", "/v1/campaigns/\(campaign)/jobs/not-a-uuid/cancel").problemFields == ["job_id"])

        let events = try await Self.events(c, "/v1/campaigns/\(campaign)")
        let kinds = events.compactMap { $0["kind"] as? String }
        #expect(kinds == ["created", "wave_released", "job_canceled", "job_canceled", "paused"], "\(kinds)")
        #expect(events.compactMap { $0["cause"] as? String } == ["operator", "rollout", "operator", "operator", "threshold"])
        let ids = events.compactMap { $0["id"] as? Int }
        #expect(ids == ids.sorted() && Set(ids).count == ids.count)
        let canceledDevices = events.filter { $0["kind"] as? String == "job_canceled" }
            .compactMap { (($0["details"] as? [String: Any])?["device_id"] as? String)?.lowercased() }
        #expect(canceledDevices == [b.id.lowercased(), a.id.lowercased()])
        #expect(try await c.request("GET", "/v1/campaigns/\(campaign)/events?after=x").problemFields == ["after"])
        #expect(try await c.request("GET", "/v1/campaigns/\(UUID().uuidString.lowercased())/events").status == 404)
    }

    /// A window on Mondays 10:00–11:00 UTC, with the coordinator's clock moved by hand: nothing is leased before it,
    /// the canary wave runs inside it, the next wave waits through the closed week and is released when it reopens.
    @Test func aMaintenanceWindowReleasesWavesOnlyInsideIt() async throws {
        // Monday 2026-11-30 09:00 UTC.
        let monday9 = Date(timeIntervalSince1970: 1_795_996_800 + 9 * 3600)
        let clock = ManualClock(monday9)
        let c = try TestCoordinator(database: try EmbeddedPostgres.sharedForTests(), clock: clock.wallClock)
        let model = try c.insertModel()
        let a = try await c.registerDevice(name: "a", labels: ["fleet": "win"])
        let b = try await c.registerDevice(name: "b", labels: ["fleet": "win"])
        let window = #", "window": {"days": ["mon"], "start": "10:00", "end": "11:00"}"#
        let campaign = try await Self.campaign(c, Self.body(model, label: "win", canary: 50, extra: window))
        let scheduler = c.app.services.scheduler
        func status() async throws -> (String?, String?) {
            let o = try await c.request("GET", "/v1/campaigns/\(campaign)").object
            return (o?["status"] as? String, o?["status_reason"] as? String)
        }
        let (held, reason) = try await status()
        #expect(held == "paused")
        #expect(reason?.contains("maintenance window") == true && reason?.contains("2026-11-30T10:00:00") == true, "\(reason ?? "-")")
        for d in [a, b] { #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: d.token).status == 204) }
        // An operator's resume does not override the schedule.
        #expect(try await c.request("POST", "/v1/campaigns/\(campaign)/resume").problemCode == "invalid_campaign_state")

        clock.set(monday9.addingTimeInterval(3900))   // 10:05
        #expect(try scheduler.evaluate(UUID(uuidString: campaign)!, now: clock.now) == .unchanged)
        #expect(try await status().0 == "running")
        let jobs = try await Self.jobs(c, campaign)
        let canary = try #require(jobs.first { $0["wave"] as? Int == 0 }?["device_id"] as? String)
        let (first, second) = canary.lowercased() == a.id.lowercased() ? (a, b) : (b, a)
        let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: first.token)
        #expect(leased.status == 200, "\(leased.text)")
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: second.token).status == 204, "wave 1 is not released yet")

        // The window closes while the canary runs; its success then releases nothing until the next Monday.
        clock.set(monday9.addingTimeInterval(2.5 * 3600))   // 11:30
        let job = try #require(leased.object?["id"] as? String), attempt = try #require(leased.object?["attempt"] as? Int)
        let result = try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: first.token, json: #"{"attempt": \#(attempt), "outcome": "succeeded"}"#)
        #expect(result.status == 200, "\(result.text)")
        let (closed, closedReason) = try await status()
        #expect(closed == "paused" && closedReason?.contains("2026-12-07T10:00:00") == true, "\(closedReason ?? "-")")
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: second.token).status == 204)
        for hours in [24.0, 72, 160] {   // Tuesday, Thursday, the next Monday 09:30: still closed
            clock.set(monday9.addingTimeInterval(hours * 3600 + 1800))
            #expect(try scheduler.evaluate(UUID(uuidString: campaign)!, now: clock.now) == .unchanged)
            #expect(try await status().0 == "paused")
        }
        clock.set(monday9.addingTimeInterval(7 * 86_400 + 3600 + 60))   // next Monday 10:01
        // (The maintenance loop, reading the same clock, may have released it a moment before this evaluation.)
        let reopened = try scheduler.evaluate(UUID(uuidString: campaign)!, now: clock.now)
        #expect(reopened == .releasedWave(1) || reopened == .unchanged, "\(reopened)")
        #expect(try await c.request("GET", "/v1/campaigns/\(campaign)").object?["released_wave"] as? Int == 1)
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: second.token).status == 200)

        let kinds = try await Self.events(c, "/v1/campaigns/\(campaign)").compactMap { $0["kind"] as? String }
        #expect(kinds == ["created", "schedule_closed", "schedule_opened", "schedule_closed", "schedule_opened", "wave_released"], "\(kinds)")

        // Malformed windows and start times are refused naming the field, and nothing is created.
        let before = try c.count("campaigns")
        for (bad, field) in [(#"{"days": ["mon"], "start": "25:00", "end": "11:00"}"#, "window.start"),
                             (#"{"days": [], "start": "10:00", "end": "11:00"}"#, "window.days"),
                             (#"{"days": ["someday"], "start": "10:00", "end": "11:00"}"#, "window.days"),
                             (#"{"days": ["mon"], "start": "10:00", "end": "10:00"}"#, "window.end")] {
            let r = try await c.request("POST", "/v1/domains", json: Self.body(model, label: "win", extra: #", "window": \#(bad)"#))
            #expect(r.status == 422 && r.problemFields == [field], "\(bad): \(r.text)")
            let release = try await c.request("POST", "/v1/releases", json: """
                {"model_id": "\(model)", "selector": {"labels": {"fleet": "win"}}, "window": \(bad)}
                """)
            #expect(release.status == 422 && release.problemFields == [field], "release \(bad): \(release.text)")
        }
        let badStart = try await c.request("POST", "/v1/domains", json: Self.body(model, label: "win", extra: #", "start_at": "tomorrow""#))
        #expect(badStart.status == 400 || badStart.status == 422, "\(badStart.text)")
        #expect(try c.count("campaigns") == before)
    }

    /// `start_at` holds every wave until it, by the coordinator's clock.
    @Test func startAtHoldsTheCampaignUntilItsTime() async throws {
        let now = Date(timeIntervalSince1970: 1_795_996_800)
        let clock = ManualClock(now)
        let c = try TestCoordinator(database: try EmbeddedPostgres.sharedForTests(), clock: clock.wallClock)
        let model = try c.insertModel()
        let d = try await c.registerDevice(name: "a", labels: ["fleet": "later"])
        let campaign = try await Self.campaign(c, Self.body(model, label: "later", extra: #", "start_at": "2026-11-30T06:00:00Z""#))
        #expect(try await c.request("GET", "/v1/campaigns/\(campaign)").object?["status"] as? String == "paused")
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: d.token).status == 204)
        clock.set(now.addingTimeInterval(6 * 3600 - 1))
        #expect(try c.app.services.scheduler.evaluate(UUID(uuidString: campaign)!, now: clock.now) == .unchanged)
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: d.token).status == 204)
        clock.set(now.addingTimeInterval(6 * 3600))
        try c.app.services.scheduler.evaluate(UUID(uuidString: campaign)!, now: clock.now)
        #expect(try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: d.token).status == 200)
    }

    /// The release gate: a device whose measured latency is over its budget (30 ms here) ends `rejected` and keeps
    /// its model; one within it moves.
    @Test func aReleaseResultOverTheLatencyBudgetIsRejectedAndTheDeviceKeepsItsModel() async throws {
        let c = try TestCoordinator()
        let a = try #require(try await ReleaseTests.upload(c, drop: 0.01, query: "name=gated").object?["id"] as? String).lowercased()
        let slow = try await c.registerDevice(name: "slow", labels: ["group": "gated"])
        let fast = try await c.registerDevice(name: "fast", labels: ["group": "gated"])
        let b = try #require(try await ReleaseTests.upload(c, drop: 0.02, query: "name=gated").object?["id"] as? String).lowercased()
        let created = try await c.request("POST", "/v1/releases", json: """
            {"model_id": "\(b)", "selector": {"labels": {"group": "gated"}},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 50}, "max_attempts": 1}
            """)
        #expect(created.status == 201, "\(created.text)")
        let release = try #require(created.object?["id"] as? String)
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        for (device, ms) in [(slow, 40.0), (fast, 2.0)] {
            let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: device.token)
            let job = try #require(leased.object?["id"] as? String), attempt = try #require(leased.object?["attempt"] as? Int)
            let r = try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: device.token,
                                        json: #"{"attempt": \#(attempt), "outcome": "succeeded", "metrics": {"latency_ms": \#(ms)}}"#)
            #expect(r.status == 200, "\(r.text)")
        }
        let jobs = try await Self.jobs(c, campaign)
        let slowJob = try #require(jobs.first { ($0["device_id"] as? String)?.lowercased() == slow.id.lowercased() })
        #expect(slowJob["state"] as? String == "rejected", "\(slowJob)")
        let verdict = try #require(slowJob["gate"] as? [String: Any])
        #expect(verdict["latency_ms"] as? Double == 40 && verdict["latency_budget_ms"] as? Double == 30, "\(verdict)")
        #expect((verdict["reasons"] as? [String])?.first?.contains("latency budget") == true)
        #expect(jobs.first { ($0["device_id"] as? String)?.lowercased() == fast.id.lowercased() }?["state"] as? String == "succeeded")
        let slowConfig = try await c.request("GET", "/v1/devices/\(slow.id)/config").object
        #expect((slowConfig?["model_id"] as? String)?.lowercased() == a, "the rejected device keeps its model")
        let fastConfig = try await c.request("GET", "/v1/devices/\(fast.id)/config").object
        #expect((fastConfig?["model_id"] as? String)?.lowercased() == b)
        let rejected = try await Self.events(c, "/v1/releases/\(release)").filter { $0["kind"] as? String == "gate_rejected" }
        #expect(rejected.count == 1 && (rejected.first?["details"] as? [String: Any])?["device_id"] as? String == slow.id.lowercased(), "\(rejected)")
    }

    /// A continuous campaign gives a device registered later, and one relabelled to match, its job; a plain one does not.
    @Test func continuousTargetingPicksUpLaterDevices() async throws {
        let c = try TestCoordinator()
        let model = try c.insertModel()
        _ = try await c.registerDevice(name: "first", labels: ["fleet": "grow"])
        let continuous = try await Self.campaign(c, Self.body(model, label: "grow", extra: #", "continuous": true"#))
        let plain = try await Self.campaign(c, Self.body(model, label: "grow"))
        let late = try await c.registerDevice(name: "late", labels: ["fleet": "grow"])
        let other = try await c.registerDevice(name: "other", labels: ["fleet": "elsewhere"])
        let scheduler = c.app.services.scheduler
        try scheduler.evaluate(UUID(uuidString: continuous)!, now: Date())
        try scheduler.evaluate(UUID(uuidString: plain)!, now: Date())
        #expect(Set(try await Self.jobs(c, continuous).compactMap { ($0["device_id"] as? String)?.lowercased() }).contains(late.id.lowercased()))
        #expect(try await Self.jobs(c, continuous).count == 2)
        #expect(try await Self.jobs(c, plain).count == 1)
        let relabel = try await c.request("PATCH", "/v1/devices/\(other.id)", json: #"{"labels": {"fleet": "grow"}}"#)
        #expect(relabel.status == 200, "\(relabel.text)")
        try scheduler.evaluate(UUID(uuidString: continuous)!, now: Date())
        #expect(try await Self.jobs(c, continuous).count == 3)
        #expect(try await c.request("GET", "/v1/campaigns/\(continuous)").object?["target_count"] as? Int == 3)
        let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: late.token)
        #expect(leased.status == 200, "the late device's job is in the released wave: \(leased.text)")
        let added = try await Self.events(c, "/v1/campaigns/\(continuous)").filter { $0["kind"] as? String == "targets_added" }
        #expect(added.compactMap { ($0["details"] as? [String: Any])?["devices"] as? Int } == [1, 1])

        let byIDs = try await c.request("POST", "/v1/domains", json: """
            {"name": "ids", "model_id": "\(model)", "selector": {"device_ids": ["\(late.id)"]}, "continuous": true,
             "job": {"kind": "profile", "timeout_s": 600, "max_attempts": 1}}
            """)
        #expect(byIDs.status == 422 && byIDs.problemFields == ["continuous"], "\(byIDs.text)")
        // The campaign list filters by model too.
        let listed = try await c.request("GET", "/v1/campaigns?model_id=\(model)")
        #expect((listed.object?["items"] as? [[String: Any]])?.count == 2)
        #expect((try await c.request("GET", "/v1/campaigns?model_id=\(UUID().uuidString.lowercased())").object?["items"] as? [[String: Any]])?.isEmpty == true)
        #expect(try await c.request("GET", "/v1/campaigns?model_id=nope").problemFields == ["model_id"])
    }
}
