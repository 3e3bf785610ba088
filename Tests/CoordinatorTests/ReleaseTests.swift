@testable import Coordinator
import Foundation
import Testing

/// Model releases (issue 15): publishing stores a model and moves no device; versions rise per name; a release
/// moves exactly the devices its selector matches, wave by wave through real agents; a model in use cannot be
/// deleted.
@Suite(.serialized) struct ReleaseTests {
    static func upload(_ c: TestCoordinator, drop: Double, query: String) async throws -> TestResponse {
        try await c.request("POST", "/v1/models?\(query)", body: Data(try ModelHardeningTests.package(drop: drop).encode()))
    }

    func waitFor(_ what: String, timeout: Double = 180, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test func modelsGetRisingVersionsPerNameAndTags() async throws {
        let c = try TestCoordinator()
        let first = try await Self.upload(c, drop: 0.01, query: "name=cams&tags=stable,cameras")
        #expect(first.status == 201, "\(first.text)")
        #expect(first.object?["version"] as? Int == 1)
        #expect(first.object?["tags"] as? [String] == ["stable", "cameras"])
        let secondBytes = Data(try ModelHardeningTests.package(drop: 0.02).encode())
        let second = try await c.request("POST", "/v1/models?name=cams", body: secondBytes)
        #expect(second.object?["version"] as? Int == 2)
        #expect(second.object?["tags"] as? [String] == [])
        let other = try await Self.upload(c, drop: 0.03, query: "name=robots")
        #expect(other.object?["version"] as? Int == 1)
        // The same bytes again: the model already stored, no new version.
        let again = try await c.request("POST", "/v1/models?name=cams", body: secondBytes)
        #expect(again.status == 200)
        #expect(again.object?["version"] as? Int == 2)

        let cams = try await c.request("GET", "/v1/models?name=cams")
        let items = try #require(cams.object?["items"] as? [[String: Any]])
        #expect(items.compactMap { $0["version"] as? Int }.sorted() == [1, 2])
        #expect(Set(items.compactMap { $0["name"] as? String }) == ["cams"])
        #expect((try await c.request("GET", "/v1/models").object?["items"] as? [[String: Any]])?.count == 3)

        // Bad tags are refused naming the field, and nothing is stored.
        for bad in ["tags=", "tags=a,,b", "tags=has%20space", "tags=" + String(repeating: "x", count: 65)] {
            let r = try await Self.upload(c, drop: 0.04, query: "name=cams&" + bad)
            #expect(r.status == 400, "\(bad): \(r.text)")
            #expect(r.problemFields == ["tags"], "\(bad)")
        }
        #expect(try c.count("models") == 3)
    }

    /// Two models and two selectors: each group ends on its own model. The cameras stay on the first model
    /// (publishing the second moved nobody); the robots' release runs through real agents and moves them.
    @Test func aReleaseMovesOnlyItsSelectorAndEachGroupEndsOnItsOwnModel() async throws {
        let c = try TestCoordinator()
        let a = try #require(try await Self.upload(c, drop: 0.01, query: "name=base").object?["id"] as? String).lowercased()
        var cams: [(id: String, token: String)] = [], robots: [(id: String, token: String)] = []
        for i in 0..<2 { cams.append(try await c.registerDevice(name: "cam-\(i)", labels: ["group": "cams"])) }
        for i in 0..<2 { robots.append(try await c.registerDevice(name: "robot-\(i)", labels: ["group": "robots"])) }
        func config(_ id: String) async throws -> [String: Any] {
            try #require(try await c.request("GET", "/v1/devices/\(id)/config").object)
        }
        for d in cams + robots { #expect((try await config(d.id)["model_id"] as? String)?.lowercased() == a) }

        let b = try #require(try await Self.upload(c, drop: 0.02, query: "name=base&tags=next").object?["id"] as? String).lowercased()
        #expect(try c.app.services.replanner.catchUp() == 0)
        for d in cams + robots {
            let cfg = try await config(d.id)
            #expect((cfg["model_id"] as? String)?.lowercased() == a, "publishing moves nobody")
            #expect(cfg["version"] as? Int == 1)
        }

        // Refusals name the field and create nothing.
        let unknown = try await c.request("POST", "/v1/releases", json: """
            {"model_id": "\(UUID().uuidString.lowercased())", "selector": {"labels": {"group": "robots"}}}
            """)
        #expect(unknown.status == 422 && unknown.problemCode == "unknown_model" && unknown.problemFields == ["model_id"], "\(unknown.text)")
        let empty = try await c.request("POST", "/v1/releases", json: #"{"model_id": "\#(b)", "selector": {}}"#)
        #expect(empty.status == 422 && empty.problemFields == ["selector"], "\(empty.text)")
        let badTimeout = try await c.request("POST", "/v1/releases", json: """
            {"model_id": "\(b)", "selector": {"labels": {"group": "robots"}}, "timeout_s": 0}
            """)
        #expect(badTimeout.status == 422 && badTimeout.problemFields == ["timeout_s"], "\(badTimeout.text)")
        let nobody = try await c.request("POST", "/v1/releases", json: #"{"model_id": "\#(b)", "selector": {"labels": {"group": "none"}}}"#)
        #expect(nobody.status == 422 && nobody.problemCode == "no_targets", "\(nobody.text)")
        #expect(try c.count("releases") == 0 && c.count("campaigns") == 0)

        let body = """
            {"model_id": "\(b)", "selector": {"labels": {"group": "robots"}},
             "rollout": {"canary_pct": 50, "wave_size_pct": 50, "success_threshold_pct": 50}, "timeout_s": 300}
            """
        let created = try await c.request("POST", "/v1/releases", json: body, headers: ["Idempotency-Key": "release-robots-1"])
        #expect(created.status == 201, "\(created.text)")
        let release = try #require(created.object?["id"] as? String)
        #expect(created.headers["location"] == "/v1/releases/\(release)")
        let campaign = try #require(created.object?["campaign"] as? [String: Any])
        #expect(campaign["target_count"] as? Int == 2)
        let replay = try await c.request("POST", "/v1/releases", json: body, headers: ["Idempotency-Key": "release-robots-1"])
        #expect(replay.status == 201 && replay.object?["id"] as? String == release && replay.headers["idempotent-replayed"] == "true")
        #expect(try c.count("releases") == 1)

        let agents = try robots.enumerated().map { i, d in try FleetAdaptationTests.startAgent(c, token: d.token, data: try FleetAdaptationTests.deviceData(20 + i)) }
        defer { for p in agents where p.isRunning { p.terminate() } }
        try await waitFor("the release to complete") {
            try await c.request("GET", "/v1/releases/\(release)").object?["status"] as? String == "completed"
        }
        for d in robots {
            let cfg = try await config(d.id)
            #expect((cfg["model_id"] as? String)?.lowercased() == b, "released: \(cfg)")
            #expect(cfg["trigger"] as? String == "release")
        }
        for d in cams {
            let cfg = try await config(d.id)
            #expect((cfg["model_id"] as? String)?.lowercased() == a, "outside the selector: \(cfg)")
            #expect(cfg["version"] as? Int == 1)
        }

        // The operator's view of releases, and the controls refusing a finished one.
        let completed = try await c.request("GET", "/v1/releases?status=completed")
        #expect((completed.object?["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [release])
        #expect((try await c.request("GET", "/v1/releases?status=running").object?["items"] as? [[String: Any]])?.isEmpty == true)
        #expect((try await c.request("GET", "/v1/releases?model_id=\(a)").object?["items"] as? [[String: Any]])?.isEmpty == true)
        let bad = try await c.request("GET", "/v1/releases?status=bogus")
        #expect(bad.status == 400 && bad.problemFields == ["status"])
        let pause = try await c.request("POST", "/v1/releases/\(release)/pause")
        #expect(pause.status == 409 && pause.problemCode == "invalid_release_state", "\(pause.text)")
        #expect(try await c.request("GET", "/v1/releases/\(UUID().uuidString.lowercased())").status == 404)

        // Both models are in use: neither can be deleted.
        for m in [a, b] {
            let refused = try await c.request("DELETE", "/v1/models/\(m)")
            #expect(refused.status == 409 && refused.problemCode == "model_in_use", "\(refused.text)")
        }

        // A robot registered now has no config and a release in force matches it: it starts on the release's model.
        // A device no release matches waits (two models: the operator chooses).
        let late = try await c.registerDevice(name: "robot-late", labels: ["group": "robots"])
        #expect((try await config(late.id)["model_id"] as? String)?.lowercased() == b)
        let stray = try await c.registerDevice(name: "stray", labels: ["group": "other"])
        #expect(try await c.request("GET", "/v1/devices/\(stray.id)/config").status == 404)

        // A deprecated model cannot be released.
        #expect(try await c.request("POST", "/v1/models/\(a)/deprecate").status == 200)
        let deprecated = try await c.request("POST", "/v1/releases", json: #"{"model_id": "\#(a)", "selector": {"labels": {"group": "cams"}}}"#)
        #expect(deprecated.status == 422 && deprecated.problemCode == "model_not_releasable", "\(deprecated.text)")
    }
}
