import Foundation
import Testing

/// What a rollback does when devices do not answer: an offline device's restore job stops holding the rollback open
/// after the restore deadline and runs when the device returns; a failed restore is retried by asking for the
/// rollback again; a restore whose device has moved on is never handed out; and an operator cancels one device's job
/// from the CLI. The test is the agent here (its calls over HTTP), so it can stay away, fail and come back at will.
@Suite(.serialized) struct RollbackRecoveryTests {
    typealias TestDevice = (id: String, token: String)
    let fleet = FleetAdaptationTests()

    /// A device moved by a release to a second model, then the release rolled back: the device has a restore job.
    func rolledBackRelease(_ c: TestCoordinator, group: String) async throws -> (release: String, campaign: String, device: TestDevice) {
        _ = try #require(try await ReleaseTests.upload(c, drop: 0.01, query: "name=\(group)").object?["id"] as? String)
        let d = try await c.registerDevice(name: "cam-\(group)", labels: ["group": group])
        let b = try #require(try await ReleaseTests.upload(c, drop: 0.02, query: "name=\(group)").object?["id"] as? String)
        let created = try await c.request("POST", "/v1/releases", json: #"{"model_id": "\#(b)", "selector": {"labels": {"group": "\#(group)"}}, "max_attempts": 1}"#)
        #expect(created.status == 201, "\(created.text)")
        let release = try #require(created.object?["id"] as? String)
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: d.token)
        let job = try #require(leased.object?["id"] as? String), attempt = try #require(leased.object?["attempt"] as? Int)
        #expect(try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: d.token, json: #"{"attempt": \#(attempt), "outcome": "succeeded"}"#).status == 200)
        try await fleet.waitFor("the release to move the device") {
            try await c.request("GET", "/v1/devices/\(d.id)/config").object?["trigger"] as? String == "release"
        }
        let rolled = try await c.request("POST", "/v1/releases/\(release)/rollback")
        #expect(rolled.status == 200 && rolled.object?["restoring_devices"] as? Int == 1 && rolled.object?["overdue_devices"] as? Int == 0,
                "\(rolled.text)")
        return (release, campaign, d)
    }

    func status(_ c: TestCoordinator, _ release: String) async throws -> String? {
        try await c.request("GET", "/v1/releases/\(release)").object?["status"] as? String
    }

    func lease(_ c: TestCoordinator, _ d: TestDevice) async throws -> (id: String, attempt: Int, kind: String)? {
        let r = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: d.token)
        guard r.status == 200 else { return nil }
        return (try #require(r.object?["id"] as? String), try #require(r.object?["attempt"] as? Int),
                try #require((r.object?["document"] as? [String: Any])?["kind"] as? String))
    }

    @Test func anOfflineDeviceDoesNotHoldTheRollbackOpenAndRestoresWhenItReturns() async throws {
        let c = try TestCoordinator()
        let (release, campaign, d) = try await rolledBackRelease(c, group: "offline")
        // Within the deadline the rollback waits for the device.
        #expect(try await status(c, release) == "rolling_back")
        let waiting = try await c.request("POST", "/v1/releases/\(release)/rollback")
        #expect(waiting.object?["overdue_devices"] as? Int == 0 && waiting.object?["campaign"].flatMap { ($0 as? [String: Any])?["status"] as? String } == "rolling_back",
                "\(waiting.text)")
        // As if the job had waited two hours untaken (the default deadline is one hour).
        _ = try c.sql("UPDATE jobs SET updated_at = now() - interval '2 hours' WHERE campaign_id = \(UUID(uuidString: campaign)!) AND kind = 'restore'")
        let ended = try await c.request("POST", "/v1/releases/\(release)/rollback")
        #expect(ended.status == 200 && ended.object?["overdue_devices"] as? Int == 1 && ended.object?["restoring_devices"] as? Int == 1, "\(ended.text)")
        #expect(try await status(c, release) == "rolled_back")
        let events = try await RolloutScheduleTests.events(c, "/v1/releases/\(release)")
        let overdue = try #require(events.first { $0["kind"] as? String == "restore_overdue" }?["details"] as? [String: Any], "\(events)")
        #expect(overdue["devices"] as? Int == 1 && (overdue["reason"] as? String)?.contains("3600 s") == true, "\(overdue)")
        #expect(events.last?["kind"] as? String == "rollback_finished")
        let reason = try #require(try await c.request("GET", "/v1/campaigns/\(campaign)").object?["status_reason"] as? String)
        #expect(reason.contains("1 offline device(s)"), "\(reason)")

        // The device returns: its restore job is still there for it, and once it reports, the figures say so.
        let restore = try #require(try await lease(c, d))
        #expect(restore.kind == "restore")
        #expect(try await c.request("POST", "/v1/agent/jobs/\(restore.id)/result", token: d.token,
                                    json: #"{"attempt": \#(restore.attempt), "outcome": "succeeded"}"#).status == 200)
        let after = try await c.request("GET", "/v1/releases/\(release)/rollback")
        #expect(after.status == 200 && after.object?["reapplied_devices"] as? Int == 1 && after.object?["restoring_devices"] as? Int == 0
                && after.object?["overdue_devices"] as? Int == 0, "\(after.text)")
        #expect(try await status(c, release) == "rolled_back")
    }

    @Test func aFailedRestoreIsRetriedByAskingForTheRollbackAgain() async throws {
        let c = try TestCoordinator()
        let (release, campaign, d) = try await rolledBackRelease(c, group: "retry")
        let first = try #require(try await lease(c, d))
        #expect(first.kind == "restore")
        #expect(try await c.request("POST", "/v1/agent/jobs/\(first.id)/result", token: d.token,
                                    json: #"{"attempt": \#(first.attempt), "outcome": "failed", "error": "storage full"}"#).status == 200)
        try await fleet.waitFor("the rollback to end with the failure", timeout: 60) { try await status(c, release) == "rolled_back" }
        #expect(try await lease(c, d) == nil, "an ended restore job is not handed out again by itself")

        let again = try await c.request("POST", "/v1/releases/\(release)/rollback")
        #expect(again.status == 200 && again.object?["restoring_devices"] as? Int == 1 && again.object?["restore_failed_devices"] as? Int == 0,
                "\(again.text)")
        #expect(try await status(c, release) == "rolling_back")
        let retried = try #require(try await RolloutScheduleTests.events(c, "/v1/releases/\(release)").last)
        #expect(retried["kind"] as? String == "restore_retried" && (retried["details"] as? [String: Any])?["devices"] as? Int == 1, "\(retried)")
        let second = try #require(try await lease(c, d))
        #expect(second.id == first.id && second.attempt == first.attempt + 1, "the same job, a new attempt")
        // The first attempt's late answer is refused; the new one lands.
        let stale = try await c.request("POST", "/v1/agent/jobs/\(first.id)/result", token: d.token,
                                        json: #"{"attempt": \#(first.attempt), "outcome": "succeeded"}"#)
        #expect(stale.status == 409, "\(stale.text)")
        #expect(try await c.request("POST", "/v1/agent/jobs/\(second.id)/result", token: d.token,
                                    json: #"{"attempt": \#(second.attempt), "outcome": "succeeded"}"#).status == 200)
        try await fleet.waitFor("the retried rollback to end", timeout: 60) { try await status(c, release) == "rolled_back" }
        let done = try await c.request("GET", "/v1/releases/\(release)/rollback")
        #expect(done.object?["reapplied_devices"] as? Int == 1 && done.object?["restore_failed_devices"] as? Int == 0, "\(done.text)")
        #expect(try c.count("jobs WHERE campaign_id = '\(campaign)' AND kind = 'restore'") == 1, "still one restore job")
        // Nothing left to retry: asking again changes nothing.
        let quiet = try await c.request("POST", "/v1/releases/\(release)/rollback")
        #expect(quiet.status == 200 && quiet.object?["restoring_devices"] as? Int == 0)
        #expect(try await status(c, release) == "rolled_back")
    }

    @Test func aRestoreIsNeverHandedOutOnceTheDeviceHasMovedOn() async throws {
        let c = try TestCoordinator()
        let (release, campaign, d) = try await rolledBackRelease(c, group: "moved")
        _ = try c.sql("UPDATE jobs SET updated_at = now() - interval '2 hours' WHERE campaign_id = \(UUID(uuidString: campaign)!) AND kind = 'restore'")
        #expect(try await c.request("POST", "/v1/releases/\(release)/rollback").object?["overdue_devices"] as? Int == 1)
        // While the device was away, its config moved past the restored version (as a later re-plan would write it).
        let device = UUID(uuidString: d.id)!
        _ = try c.sql("""
            INSERT INTO device_configs (device_id, version, model_id, decision, trigger, created_at)
            SELECT device_id, version + 1, model_id, decision, 'replan', now() FROM device_configs
            WHERE device_id = \(device) ORDER BY version DESC LIMIT 1
            """)
        #expect(try await lease(c, d) == nil, "the restore would put back a config the device no longer has")
    }

    @Test func anOperatorCancelsOneDevicesJobFromTheCLI() async throws {
        let c = try TestCoordinator()
        let home = try AdminCLITests.Home()
        _ = try AdminCLITests.login(c, home: home)
        _ = try #require(try await ReleaseTests.upload(c, drop: 0.01, query: "name=cancel").object?["id"] as? String)
        let one = try await c.registerDevice(name: "cam-1", labels: ["group": "cancel-job"])
        _ = try await c.registerDevice(name: "cam-2", labels: ["group": "cancel-job"])
        let b = try #require(try await ReleaseTests.upload(c, drop: 0.02, query: "name=cancel").object?["id"] as? String)
        let created = try await c.request("POST", "/v1/releases", json: #"{"model_id": "\#(b)", "selector": {"labels": {"group": "cancel-job"}}, "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 50}}"#)
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let jobs = try await QualityGateTests().jobs(c, campaign)
        let job = try #require(jobs.first { ($0["device_id"] as? String)?.lowercased() == one.id.lowercased() }?["id"] as? String)

        let canceled = try AdminCLITests.cli(["campaigns", "cancel-job", campaign, job, "-o", "json"], home: home)
        #expect(canceled.status == 0, "\(canceled.all)")
        #expect((try AdminCLITests.json(canceled.out)["id"] as? String)?.lowercased() == campaign.lowercased(), "answers the campaign")
        let after = try await QualityGateTests().jobs(c, campaign)
        #expect(after.first { $0["id"] as? String == job }?["state"] as? String == "canceled")
        #expect(after.filter { $0["state"] as? String == "queued" }.count == 1, "the other device's job goes on")
        #expect(try await lease(c, one) == nil, "the canceled job is not handed out")
        let kinds = try await RolloutScheduleTests.events(c, "/v1/campaigns/\(campaign)").compactMap { $0["kind"] as? String }
        #expect(kinds.contains("job_canceled"), "\(kinds)")

        let twice = try AdminCLITests.cli(["campaigns", "cancel-job", campaign, job], home: home)
        #expect(twice.status == 4, "an ended job is a conflict: \(twice.all)")
        let unknown = try AdminCLITests.cli(["campaigns", "cancel-job", campaign, UUID().uuidString.lowercased()], home: home)
        #expect(unknown.status == 3, "\(unknown.all)")
        let bad = try AdminCLITests.cli(["campaigns", "cancel-job", campaign, "not-a-uuid"], home: home)
        #expect(bad.status == 64, "\(bad.all)")
    }
}
