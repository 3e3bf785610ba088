@testable import Coordinator
import Foundation
import Learning
import Testing
import TestSupport

/// Drift reports and triggers through the real coordinator and database: a device's report is its own and checked
/// strictly; a trigger fires once (across replicas) when enough devices drift, creating a domain and campaign over
/// them that records its origin; and, end to end, a real agent whose camera stream turns foggy is adapted without
/// an operator.
@Suite(.serialized) struct DriftTriggerTests {
    let fleet = FleetAdaptationTests()

    static func report(windowSize: Int = 256, entropy: Double, baseline: Double, confidence: Double = 0.5, baselineConfidence: Double = 0.8) -> String {
        """
        {"window_size": \(windowSize), "window_entropy": \(entropy), "window_confidence": \(confidence),
         "baseline_entropy": \(baseline), "baseline_confidence": \(baselineConfidence),
         "entropy_rise": \(entropy - baseline), "confidence_drop": \(baselineConfidence - confidence), "config_version": 1}
        """
    }

    static func trigger(name: String = "fog watch", labels: String = #"{"site": "north"}"#, condition: String, cooldown: Int = 3600,
                        model: String? = nil, steps: Int = 40) -> String {
        """
        {"name": "\(name)", "selector": {"labels": \(labels)}, "condition": \(condition), "cooldown_s": \(cooldown),
         "domain_template": {\(model.map { "\"model_id\": \"\($0)\", " } ?? "")"job": {"loss": "tent", "steps": \(steps), "timeout_s": 600,
           "max_attempts": 2, "batch_size": 32, "learning_rate": 0.002},
           "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 100}}}
        """
    }

    @Test func badReportsAndTriggersAreRefusedNamingTheFieldAndChangeNothing() async throws {
        let c = try TestCoordinator()
        let (a, tokenA) = try await c.registerDevice(name: "cam-a", labels: ["site": "north"])
        let (b, _) = try await c.registerDevice(name: "cam-b", labels: ["site": "north"])

        // Drift reports.
        let cases: [(String, String)] = [
            (#"{"window_size": 10, "window_entropy": "NaN", "window_confidence": 0.5}"#, "window_entropy"),
            (#"{"window_size": 10, "window_entropy": 1.0, "window_confidence": 1.5}"#, "window_confidence"),
            (#"{"window_size": -1}"#, "window_size"),
            (#"{"window_size": 10, "window_confidence": 0.5}"#, "window_entropy"),
            (#"{"window_size": 0, "window_entropy": 1.0, "window_confidence": 0.5}"#, "window_size"),
            (#"{"window_size": 10, "window_entropy": 1.0, "window_confidence": 0.5, "baseline_entropy": 0.4, "entropy_rise": 5}"#, "entropy_rise"),
            (#"{"window_size": 10, "window_entropy": 1.0, "window_confidence": 0.5, "entropy_rise": 0.6}"#, "entropy_rise"),
            (#"{"window_size": 10, "window_entropy": 1.0, "window_confidence": 0.5, "config_version": -3}"#, "config_version"),
            (#"{"window_entropy": 1.0}"#, "window_size"),
        ]
        for (body, field) in cases {
            let r = try await c.request("POST", "/v1/agent/drift", token: tokenA, json: body)
            #expect(r.status == 422 && r.isProblem && r.problemFields.contains(field), "\(body): \(r.status) \(r.text)")
        }
        // A bare NaN is not JSON at all, and this decoder refuses a number beyond Double (1e999) as such too.
        for number in ["NaN", "1e999", "-Infinity"] {
            let bare = try await c.request("POST", "/v1/agent/drift", token: tokenA, json: #"{"window_size": 10, "window_entropy": \#(number), "window_confidence": 0.5}"#)
            #expect(bare.status == 400 && bare.problemCode == "invalid_json", "\(number): \(bare.status) \(bare.text)")
        }
        #expect(try c.count("device_drift") == 0, "nothing stored")
        // Only a device's own token reports, and only for itself: a body naming another device changes that one not.
        #expect(try await c.request("POST", "/v1/agent/drift", token: nil, json: Self.report(entropy: 1, baseline: 0.3)).status == 401)
        #expect(try await c.request("POST", "/v1/agent/drift", json: Self.report(entropy: 1, baseline: 0.3)).status == 403, "an API key is no device")
        let spoof = Self.report(entropy: 1.2, baseline: 0.3).replacingOccurrences(of: "{", with: "{\"device_id\": \"\(b)\", ")
        let own = try await c.request("POST", "/v1/agent/drift", token: tokenA, json: spoof)
        #expect(own.status == 200, "\(own.text)")
        #expect(own.object?["state"] as? String == "drifting")
        #expect(try await c.request("GET", "/v1/devices/\(b)").object?["drift"] == nil, "the other device is untouched")
        let readA = try await c.request("GET", "/v1/devices/\(a)").object
        let drift = try #require(readA?["drift"] as? [String: Any])
        #expect(drift["state"] as? String == "drifting")
        #expect(abs(((drift["report"] as? [String: Any])?["entropy_rise"] as? Double ?? 0) - 0.9) < 1e-9)

        // Triggers.
        let good = Self.trigger(condition: #"{"metric": "entropy_rise", "threshold": 0.3, "min_devices": 1, "for_s": 3600}"#)
        let bad: [(String, String)] = [
            (Self.trigger(condition: #"{"metric": "loss", "threshold": 0.3}"#), "condition.metric"),
            (Self.trigger(condition: #"{"metric": "entropy_rise", "threshold": -0.3}"#), "condition.threshold"),
            (Self.trigger(condition: #"{"metric": "confidence_drop", "threshold": 2}"#), "condition.threshold"),
            (Self.trigger(condition: #"{"metric": "entropy_rise", "threshold": 0.3, "min_pct": 150}"#), "condition.min_pct"),
            (Self.trigger(condition: #"{"metric": "entropy_rise", "threshold": 0.3, "min_pct": 50, "min_devices": 2}"#), "condition.min_pct"),
            (Self.trigger(condition: #"{"metric": "entropy_rise", "threshold": 0.3, "min_devices": 0}"#), "condition.min_devices"),
            (Self.trigger(condition: #"{"metric": "entropy_rise", "threshold": 0.3, "for_s": -5}"#), "condition.for_s"),
            (Self.trigger(condition: #"{"metric": "entropy_rise", "threshold": 0.3}"#, cooldown: -1), "cooldown_s"),
            (Self.trigger(condition: #"{"metric": "entropy_rise", "threshold": 0.3}"#, steps: 0), "domain_template.job.steps"),
            (Self.trigger(labels: "{}", condition: #"{"metric": "entropy_rise", "threshold": 0.3}"#), "selector"),
            (Self.trigger(name: "", condition: #"{"metric": "entropy_rise", "threshold": 0.3}"#), "name"),
            (#"{"name": "x", "selector": {"labels": {"a": "b"}}, "condition": {"metric": "entropy_rise", "threshold": 0.3}}"#, "domain_template"),
        ]
        for (body, field) in bad {
            let r = try await c.request("POST", "/v1/triggers", json: body)
            #expect(r.status == 422 && r.isProblem && r.problemFields.contains(field), "\(field): \(r.status) \(r.text)")
        }
        #expect(try c.count("triggers") == 0, "nothing stored")

        // Create (once per Idempotency-Key), list, read, disable with If-Match, delete.
        let created = try await c.request("POST", "/v1/triggers", json: good, headers: ["Idempotency-Key": "t-1"])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.object?["id"] as? String)
        #expect(created.headers["location"] == "/v1/triggers/\(id)" && created.headers["etag"] == "\"v1\"")
        let again = try await c.request("POST", "/v1/triggers", json: good, headers: ["Idempotency-Key": "t-1"])
        #expect(again.object?["id"] as? String == id && again.headers["idempotent-replayed"] == "true")
        #expect(try c.count("triggers") == 1)
        let listed = try await c.request("GET", "/v1/triggers?limit=1")
        #expect((listed.object?["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id])
        // The device is drifting beyond 0.3, so the condition holds; for_s 3600 keeps it from firing.
        try await fleet.waitFor("the condition to be seen holding", timeout: 30) {
            try await c.request("GET", "/v1/triggers/\(id)").object?["condition_since"] != nil
        }
        #expect(try await c.request("GET", "/v1/triggers/\(id)").object?["fired_count"] as? Int == 0)
        #expect(try c.count("trigger_firings") == 0)
        let stale = try await c.request("PATCH", "/v1/triggers/\(id)", json: #"{"enabled": false}"#, headers: ["If-Match": "\"v9\""])
        #expect(stale.status == 412 && stale.problemCode == "precondition_failed")
        let badPatch = try await c.request("PATCH", "/v1/triggers/\(id)", json: #"{"condition": {"metric": "entropy_rise", "threshold": 0}}"#)
        #expect(badPatch.status == 422 && badPatch.problemFields == ["condition.threshold"], "\(badPatch.text)")
        let disabled = try await c.request("PATCH", "/v1/triggers/\(id)", json: #"{"enabled": false}"#, headers: ["If-Match": "\"v1\""])
        #expect(disabled.status == 200 && disabled.object?["enabled"] as? Bool == false && disabled.headers["etag"] == "\"v2\"", "\(disabled.text)")
        #expect(disabled.object?["condition_since"] == nil, "a disabled trigger holds nothing")
        #expect(try await c.request("DELETE", "/v1/triggers/\(id)", headers: ["If-Match": "\"v1\""]).status == 412)
        #expect(try await c.request("DELETE", "/v1/triggers/\(id)", headers: ["If-Match": "\"v2\""]).status == 204)
        #expect(try await c.request("GET", "/v1/triggers/\(id)").status == 404)
        #expect(try await c.request("GET", "/v1/triggers/not-a-uuid").problemFields == ["id"])
    }

    /// Two replicas on one database, both evaluating (maintenance every 2 s, and eight direct evaluations at
    /// once): the trigger fires exactly once, over exactly the devices beyond its threshold, and the domain names
    /// its origin. A trigger whose share is not reached, and one whose `for_s` has not passed, do not fire.
    @Test func aTriggerFiresOnceAcrossReplicasOverTheDriftingDevices() async throws {
        let c = try TestCoordinator()
        let replica = try TestCoordinator(sharing: c)
        let model = try c.insertModel()
        var devices: [(id: String, token: String)] = []
        for i in 0..<4 { devices.append(try await c.registerDevice(name: "cam-\(i)", labels: ["site": "north"])) }
        // Three drift (entropy up 0.9, 0.6 and 0.4 nats); the fourth is fine.
        for (device, rise) in zip(devices, [0.9, 0.6, 0.4, 0.05]) {
            let r = try await c.request("POST", "/v1/agent/drift", token: device.token,
                                        json: Self.report(entropy: 0.3 + rise, baseline: 0.3, confidence: 0.8 - rise / 2))
            #expect(r.status == 200, "\(r.text)")
        }
        let summary = try await c.request("GET", "/v1/fleet/summary").object
        #expect(summary?["devices_by_drift_state"] as? [String: Int] == ["drifting": 3, "ok": 1], "\(summary ?? [:])")
        let metrics = try await c.request("GET", "/metrics", token: nil).text
        #expect(metrics.contains("fleetadapt_devices_by_drift_state{drift_state=\"drifting\"} 3"), "\(metrics.split(separator: "\n").filter { $0.contains("drift") })")

        let share = try await c.request("POST", "/v1/triggers", json: Self.trigger(name: "everyone", condition: #"{"metric": "entropy_rise", "threshold": 0.3, "min_pct": 100}"#, model: model))
        let patient = try await c.request("POST", "/v1/triggers", json: Self.trigger(name: "patient", condition: #"{"metric": "entropy_rise", "threshold": 0.3, "min_devices": 2, "for_s": 3600}"#, model: model))
        let firing = try await c.request("POST", "/v1/triggers", json: Self.trigger(name: "two or more", condition: #"{"metric": "entropy_rise", "threshold": 0.5, "min_devices": 2}"#, model: model))
        let (shareID, patientID, firingID) = (try #require(share.object?["id"] as? String), try #require(patient.object?["id"] as? String),
                                              try #require(firing.object?["id"] as? String))
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                let services = (i % 2 == 0 ? c : replica).app.services
                group.addTask { _ = services.triggerEvaluator.evaluateAll() }
            }
        }
        try await fleet.waitFor("the trigger to fire", timeout: 30) {
            try await c.request("GET", "/v1/triggers/\(firingID)").object?["fired_count"] as? Int == 1
        }
        try await Task.sleep(for: .seconds(5))   // both replicas' maintenance evaluates twice more meanwhile
        #expect(try c.count("trigger_firings") == 1, "fired once")
        #expect(try c.count("domains") == 1)
        let fired = try #require(try await c.request("GET", "/v1/triggers/\(firingID)").object)
        #expect(fired["fired_count"] as? Int == 1)
        let domainID = try #require(fired["last_domain_id"] as? String)
        let domain = try #require(try await c.request("GET", "/v1/domains/\(domainID)").object)
        let origin = try #require(domain["origin"] as? [String: Any])
        #expect(origin["trigger_id"] as? String == firingID)
        let expected = Set(devices.prefix(2).map(\.id))
        #expect(Set(origin["device_ids"] as? [String] ?? []) == expected, "only the devices beyond 0.5")
        #expect(Set((domain["spec"] as? [String: Any]).flatMap { ($0["selector"] as? [String: Any])?["device_ids"] as? [String] } ?? []) == expected)
        let campaignID = try #require(domain["campaign_id"] as? String)
        let campaign = try #require(try await c.request("GET", "/v1/campaigns/\(campaignID)").object)
        #expect(campaign["target_count"] as? Int == 2)
        #expect(try await c.request("GET", "/v1/triggers/\(shareID)").object?["condition_since"] == nil, "3 of 4 is not 100%")
        let waiting = try #require(try await c.request("GET", "/v1/triggers/\(patientID)").object)
        #expect(waiting["condition_since"] != nil && waiting["fired_count"] as? Int == 0, "holding, but not for an hour")
        #expect(try await replica.request("GET", "/metrics", token: nil).text.contains("fleetadapt_trigger_firings 1"))
    }

    // MARK: End to end with a real agent

    /// A real `fleetadapt-agent` with a spool folder and `--serve`: clean frames first, then a foggy stream. The
    /// agent reports the drift, the trigger fires, the campaign runs the adapt job on the agent, and the served
    /// entropy on the foggy stream falls once the agent serves the adapted network.
    @Test func aFoggyStreamIsAdaptedWithoutAnOperator() async throws {
        let c = try TestCoordinator()
        let model = try await FleetAdaptationTests.publish(c)
        let (device, token) = try await c.registerDevice(name: "camera", labels: ["site": "harbour"], gflops: 2)
        let trigger = try await c.request("POST", "/v1/triggers", json: Self.trigger(
            name: "harbour fog", labels: #"{"site": "harbour"}"#, condition: #"{"metric": "entropy_rise", "threshold": 0.2, "min_devices": 1, "for_s": 2}"#))
        #expect(trigger.status == 201, "\(trigger.text)")
        let triggerID = try #require(trigger.object?["id"] as? String)

        let test = try FashionMNIST.load(split: .test)
        let spoolClean = test.subset(0..<256)
        let cleanStream = test.subset(256..<512)
        let fogStream = try Corruption.fog.apply(to: test.subset(512..<768), severity: 4, seed: 11, firstIndex: 512)
        let spool = NSTemporaryDirectory() + "fleetadapt-spool-\(getpid())-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: spool); try? FileManager.default.removeItem(atPath: spool + "-state") }
        try Self.writeFrames(spoolClean, prefix: "clean", into: spool)

        let logPath = spool + "-agent.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: FleetAdaptationTests.agentPath)
        agent.arguments = ["--coordinator", c.baseURL, "--data-dir", spool, "--cache-dir", spool + "-cache", "--poll-wait", "2", "--watch",
                           "--window", "256", "--serve", "127.0.0.1:0", "--drift-report-interval", "1"]
        var env = ProcessInfo.processInfo.environment
        env["FLEETADAPT_TOKEN"] = token
        agent.environment = env
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        agent.standardOutput = log
        agent.standardError = log
        try agent.run()
        defer {
            if agent.isRunning { agent.terminate(); agent.waitUntilExit() }
            try? FileManager.default.removeItem(atPath: spool + "-cache")
        }
        var port = 0
        try await fleet.waitFor("the agent's inference service", timeout: 120) {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("inference service on 127.0.0.1:") }),
               let p = line.split(separator: ":").dropFirst(2).first.flatMap({ Int($0.prefix { $0.isNumber }) }) { port = p }
            guard port > 0 else { return false }
            return (try? RawHTTPClient.request(port: port, "GET", "/v1/model").status) == 200
        }
        try #require(port > 0)
        // The start-up baseline on the clean spool, reported.
        try await fleet.waitFor("a report with the start-up baseline", timeout: 60) {
            ((try await c.request("GET", "/v1/devices/\(device)").object?["drift"] as? [String: Any])?["report"] as? [String: Any])?["baseline_entropy"] != nil
        }

        let clean = try Self.predict(port: port, cleanStream)
        try await fleet.waitFor("the clean window reported", timeout: 60) {
            let drift = try await c.request("GET", "/v1/devices/\(device)").object?["drift"] as? [String: Any]
            return (drift?["report"] as? [String: Any])?["window_size"] as? Int == 256
        }
        let calm = try #require(try await c.request("GET", "/v1/devices/\(device)").object?["drift"] as? [String: Any])
        #expect(calm["state"] as? String == "ok", "a clean stream is no drift: \(calm)")
        #expect(try c.count("domains") == 0)

        // The stream changes: foggy frames arrive in the spool and are asked about.
        let changed = Date()
        try Self.writeFrames(fogStream, prefix: "fog", into: spool)
        let foggy = try Self.predict(port: port, fogStream)
        var driftSince: Date?
        try await fleet.waitFor("the device reported drifting", timeout: 60) {
            let drift = try await c.request("GET", "/v1/devices/\(device)").object?["drift"] as? [String: Any]
            guard drift?["state"] as? String == "drifting", let since = drift?["since"] as? String else { return false }
            driftSince = ISO8601DateFormatter.fractional.date(from: since)
            return true
        }
        var domainID: String?
        try await fleet.waitFor("the trigger to fire", timeout: 60) {
            domainID = try await c.request("GET", "/v1/triggers/\(triggerID)").object?["last_domain_id"] as? String
            return domainID != nil
        }
        let firedDomain = try #require(domainID)
        let domain = try #require(try await c.request("GET", "/v1/domains/\(firedDomain)").object)
        #expect((domain["origin"] as? [String: Any])?["trigger_id"] as? String == triggerID)
        #expect((domain["origin"] as? [String: Any])?["device_ids"] as? [String] == [device])
        #expect(domain["model_id"] as? String == model, "the model the device's config runs")
        let createdText = try #require(domain["created_at"] as? String)
        let created = try #require(ISO8601DateFormatter.fractional.date(from: createdText))
        let campaignID = try #require(domain["campaign_id"] as? String)
        let reported = try #require(driftSince)
        print(String(format: "drift → campaign: stream change → drift reported %.2f s → campaign created %.2f s later (%.2f s in all; report interval 1 s, for_s 2 s)",
                     reported.timeIntervalSince(changed), created.timeIntervalSince(reported), created.timeIntervalSince(changed)))

        try await fleet.waitFor("the triggered campaign", timeout: 300) {
            try await c.request("GET", "/v1/campaigns/\(campaignID)").object?["status"] as? String == "completed"
        }
        let jobs = try #require(try await c.request("GET", "/v1/campaigns/\(campaignID)/jobs").object?["items"] as? [[String: Any]])
        #expect(jobs.count == 1 && jobs.first?["state"] as? String == "succeeded", "\(jobs)")
        try await fleet.waitFor("the agent to serve the adapted network", timeout: 60) {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            return text.contains("drift baseline after adaptation")
        }
        let adapted = try Self.predict(port: port, fogStream)
        print(String(format: "served mean entropy: clean %.4f, foggy %.4f, foggy after adaptation %.4f nats", clean, foggy, adapted))
        #expect(foggy > clean, "fog raises the served entropy")
        #expect(adapted < foggy, "the adapted network is surer of the foggy stream")
        #expect(try c.count("trigger_firings") == 1, "the cooldown holds")
        agent.terminate()
        agent.waitUntilExit()
    }

    /// Frames as PNG files, each written under a hidden name and renamed (a spool never shows a half-written one).
    static func writeFrames(_ data: LabeledImages, prefix: String, into dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for i in 0..<data.count {
            let pixels = Array(data.images[(i * data.perImage)..<((i + 1) * data.perImage)])
            let name = "\(prefix)-\(String(format: "%04d", i)).png"
            try Data(PNGFile.gray(width: data.width, height: data.height, pixels: pixels)).write(to: URL(fileURLWithPath: dir + "/." + name))
            try FileManager.default.moveItem(atPath: dir + "/." + name, toPath: dir + "/" + name)
        }
    }

    /// Asks the agent about every frame (batches of 64 PNGs); the mean served entropy.
    static func predict(port: Int, _ data: LabeledImages) throws -> Double {
        var entropies: [Double] = []
        for start in stride(from: 0, to: data.count, by: 64) {
            let items = (start..<min(data.count, start + 64)).map { i -> String in
                let pixels = Array(data.images[(i * data.perImage)..<((i + 1) * data.perImage)])
                return "{\"image\": \"\(Data(PNGFile.gray(width: data.width, height: data.height, pixels: pixels)).base64EncodedString())\"}"
            }
            let r = try RawHTTPClient.request(port: port, "POST", "/v1/predict/batch", headers: [("Content-Type", "application/json")],
                                              body: Array("{\"items\": [\(items.joined(separator: ","))]}".utf8))
            guard r.status == 200, let predictions = (try r.json())["predictions"] as? [[String: Any]] else {
                throw TestFailure("predict: \(r.status) \(r.text)")
            }
            entropies += predictions.compactMap { $0["entropy"] as? Double }
        }
        return entropies.reduce(0, +) / Double(max(1, entropies.count))
    }
}

extension ISO8601DateFormatter {
    /// RFC 3339 with fractional seconds, as the wire writes them.
    static var fractional: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
