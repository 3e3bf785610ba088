import Foundation
import HTTPServer
import Testing
import TestSupport

/// The admin commands as an operator runs them: the real `fleetadapt` executable against a real coordinator on
/// loopback, a real `fleetadapt-agent` finishing the jobs of a watched campaign.
@Suite(.serialized) struct AdminCLITests {
    /// One run of the CLI: its exit status and its standard output and error, apart.
    struct Run {
        var status: Int32
        var out: String
        var err: String
        var all: String { out + err }
    }

    /// A throwaway home for the CLI (its config directory) and the files a test writes.
    final class Home: Sendable {
        let path = NSTemporaryDirectory() + "fleetadapt-cli-" + UUID().uuidString
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        var configFile: String { path + "/config/fleetadapt/config.json" }
    }

    /// Runs `fleetadapt arguments…` with only `environment` (plus PATH, HOME, XDG_CONFIG_HOME, COLUMNS) set.
    static func cli(_ arguments: [String], home: Home, columns: Int = 120, environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.path("fleetadapt"))
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": home.path, "XDG_CONFIG_HOME": home.path + "/config",
                               "COLUMNS": String(columns)].merging(environment) { _, new in new }
        let id = UUID().uuidString
        let outPath = home.path + "/out-\(id)", errPath = home.path + "/err-\(id)"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath)), err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        return Run(status: process.terminationStatus, out: try String(contentsOfFile: outPath, encoding: .utf8),
                   err: try String(contentsOfFile: errPath, encoding: .utf8))
    }

    static func json(_ text: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { throw TestFailure("not an object: \(text)") }
        return object
    }

    static func ids(_ page: [String: Any]) -> Set<String> {
        Set(((page["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
    }

    /// Whether `yaml` (read by PyYAML's safe loader) is the same document as `json` (Debian's python3-yaml).
    static func yamlEqualsJSON(_ yaml: String, _ json: String, home: Home) throws -> Bool {
        let y = home.path + "/doc.yaml", j = home.path + "/doc.json"
        try yaml.write(toFile: y, atomically: true, encoding: .utf8)
        try json.write(toFile: j, atomically: true, encoding: .utf8)
        let r = try ChildProcess.run(["/usr/bin/python3", "-c",
                                      "import json, sys, yaml; print(yaml.safe_load(open(sys.argv[1])) == json.load(open(sys.argv[2])))", y, j])
        guard r.status == 0 else { throw TestFailure("python3 with PyYAML (apt: python3-yaml) is needed to read the YAML back: \(r.output)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines) == "True"
    }

    @Test func anOperatorDrivesTheFleetWithTheCLI() async throws {
        let c = try TestCoordinator()
        let home = try Home()
        let admin = TestCoordinator.adminKey
        var everything = ""
        func run(_ arguments: [String], columns: Int = 120, environment: [String: String] = [:]) throws -> Run {
            let r = try Self.cli(arguments, home: home, columns: columns, environment: environment)
            everything += r.all
            return r
        }

        // login: a wrong key is refused (exit 5) and saves nothing; the right one is checked and saved 0600.
        let wrong = try run(["login", "--coordinator", c.baseURL], environment: ["FLEETADAPT_KEY": "not-the-key-0123456789abcdefghijkl"])
        #expect(wrong.status == 5 && wrong.err.contains("unauthorized"), "\(wrong.all)")
        #expect(!FileManager.default.fileExists(atPath: home.configFile))
        let login = try run(["login", "--coordinator", c.baseURL], environment: ["FLEETADAPT_KEY": admin])
        #expect(login.status == 0, "\(login.all)")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: home.configFile)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        // From now on the CLI finds the coordinator and the key in the config alone.

        // Register two devices: flags, the token printed once (or written to a 0600 file).
        let tokenFile = home.path + "/cam-1.token"
        let first = try run(["devices", "register", "--name", "cam-1", "--hardware-class", "jetson-tx2", "--gflops", "20", "--memory-mb", "4096",
                             "--latency-budget-ms", "30", "--memory-budget-mb", "256", "--labels", "fleet=cli,site=a",
                             "--secret-file", tokenFile, "-o", "json"])
        #expect(first.status == 0, "\(first.all)")
        let firstID = try #require((try Self.json(first.out)["device"] as? [String: Any])?["id"] as? String)
        #expect(try Self.json(first.out)["token"] == nil, "with --secret-file the token is not printed")
        let token1 = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token1.hasPrefix("fad_"))
        #expect((try FileManager.default.attributesOfItem(atPath: tokenFile)[.posixPermissions] as? Int) == 0o600)
        let second = try run(["devices", "register", "--name", "cam-2", "--hardware-class", "raspberry-pi-4", "--gflops", "8", "--memory-mb", "2048",
                              "--latency-budget-ms", "30", "--memory-budget-mb", "256", "--labels", "fleet=cli,site=b"])
        #expect(second.status == 0, "\(second.all)")
        #expect(second.out.contains("Device token (shown only now): fad_"), "\(second.out)")
        let secondID = try #require(second.out.split(separator: "\n").dropFirst().first?.split(separator: " ").first.map(String.init))

        // List them: table (fitted to 80 columns with cells cut, to 60 with columns left out; ids whole), json (the
        // ids), yaml (the same document).
        let table = try run(["devices", "list", "--labels", "fleet=cli"], columns: 80)
        #expect(table.status == 0, "\(table.all)")
        #expect(table.out.hasPrefix("ID "), "\(table.out)")
        #expect(table.out.contains(firstID) && table.out.contains(secondID) && table.out.contains("…") && table.out.contains("LAST SEEN"),
                "\(table.out)")
        for line in table.out.split(separator: "\n") { #expect(line.count <= 80, "wider than 80: \(line)") }
        let narrow = try run(["devices", "list", "--labels", "fleet=cli"], columns: 60)
        #expect(narrow.out.contains(firstID) && narrow.err.contains("left out at 60 characters"), "\(narrow.all)")
        for line in narrow.out.split(separator: "\n") { #expect(line.count <= 60, "wider than 60: \(line)") }
        let wide = try run(["devices", "list", "--labels", "fleet=cli", "-o", "wide"], columns: 200)
        #expect(wide.out.contains("GFLOPS") && wide.out.contains("raspberry-pi-4"), "\(wide.out)")
        let listed = try run(["devices", "list", "--labels", "fleet=cli", "-o", "json"])
        #expect(Self.ids(try Self.json(listed.out)) == [firstID, secondID], "\(listed.out)")
        let direct = try await c.request("GET", "/v1/devices?labels=fleet=cli")
        #expect(listed.out.trimmingCharacters(in: .newlines) == direct.text.trimmingCharacters(in: .newlines), "json is the wire body")
        let yaml = try run(["devices", "list", "--labels", "fleet=cli", "-o", "yaml"])
        #expect(yaml.status == 0 && yaml.out.contains("items:"), "\(yaml.all)")
        #expect(try Self.yamlEqualsJSON(yaml.out, listed.out, home: home), "\(yaml.out)")
        let paged = try run(["devices", "list", "--labels", "fleet=cli", "--limit", "1", "-o", "json"])
        #expect(Self.ids(try Self.json(paged.out)).count == 1)

        // Patch labels under If-Match: the version read just before; a stale tag is a conflict (exit 4).
        let patched = try run(["devices", "patch", firstID, "--labels", "fleet=cli,site=c", "-o", "json"])
        #expect(patched.status == 0, "\(patched.all)")
        #expect((try Self.json(patched.out)["labels"] as? [String: String]) == ["fleet": "cli", "site": "c"])
        #expect((try Self.json(patched.out)["version"] as? Int) == 2)
        let stale = try run(["devices", "patch", firstID, "--name", "late", "--if-match", "\"v1\""])
        #expect(stale.status == 4 && stale.err.contains("precondition_failed"), "\(stale.all)")

        // Publish a model.
        let published = try run(["models", "publish", "--package", FleetAdaptationTests.baseModel, "--name", "cli-model", "--tags", "stable,cli",
                                 "-o", "json"])
        #expect(published.status == 0, "\(published.all)")
        let model = try #require(try Self.json(published.out)["id"] as? String)
        #expect((try Self.json(published.out)["tags"] as? [String]) == ["stable", "cli"])
        let models = try run(["models", "list", "--name", "cli-model", "-o", "json"])
        #expect(Self.ids(try Self.json(models.out)) == [model])

        // A domain over the first device, watched to completion while its real agent trains.
        let agent = try FleetAdaptationTests.startAgent(c, token: token1, data: try FleetAdaptationTests.deviceData(11))
        defer { if agent.isRunning { agent.terminate() } }
        let watched = try run(["domains", "create", "--name", "contrast-cli", "--model", model, "--devices", firstID, "--loss", "tent",
                               "--steps", "40", "--canary-pct", "100", "--wave-size-pct", "100", "--success-threshold-pct", "50",
                               "--watch", "--interval", "0.5", "--timeout", "300"])
        #expect(watched.status == 0, "\(watched.all)")
        #expect(watched.out.contains("device              combination"), "the demo's table: \(watched.out)")
        #expect(watched.out.contains("cam-1") && watched.out.contains("campaign completed."), "\(watched.out)")
        #expect(watched.err.contains("completed") && watched.err.contains("succeeded 1"), "plain progress lines: \(watched.err)")

        // Find its campaign without copying ids (-o id prints only them), read its history, and roll it back: the
        // device gets its previous config back; a second rollback answers the same figures.
        let domainIDs = try run(["domains", "list", "-o", "id"])
        let contrastDomain = try #require(domainIDs.out.split(separator: "\n").first.map(String.init), "\(domainIDs.all)")
        let contrastCampaign = try run(["campaigns", "list", "--domain", contrastDomain, "-o", "id"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: contrastCampaign) != nil, "\(contrastCampaign)")
        let events = try run(["campaigns", "events", contrastCampaign, "-o", "json"])
        let kinds = ((try Self.json(events.out)["items"] as? [[String: Any]]) ?? []).compactMap { $0["kind"] as? String }
        #expect(kinds.first == "created" && kinds.contains("completed"), "\(events.all)")
        let rolledBack = try run(["campaigns", "rollback", contrastCampaign, "-o", "json"])
        #expect(rolledBack.status == 0, "\(rolledBack.all)")
        let rollback = try Self.json(rolledBack.out)
        #expect(rollback["changed_devices"] as? Int == 1, "\(rolledBack.out)")
        let rollbackStatus = (rollback["campaign"] as? [String: Any])?["status"] as? String
        #expect(rollbackStatus == "rolled_back" || rollbackStatus == "rolling_back", "\(rolledBack.out)")
        let rollbackTable = try run(["campaigns", "rollback", contrastCampaign])
        #expect(rollbackTable.status == 0 && rollbackTable.out.hasPrefix("CAMPAIGN") && rollbackTable.out.contains(contrastCampaign),
                "\(rollbackTable.all)")
        let config = try run(["devices", "config", firstID, "-o", "json"])
        #expect(try Self.json(config.out)["trigger"] as? String == "rollback", "\(config.out)")

        // A campaign over the second device (no agent): watched in the background, canceled, the watch exits 2.
        let pending = try run(["domains", "create", "--name", "idle-cli", "--model", model, "--devices", secondID, "-o", "json"])
        #expect(pending.status == 0, "\(pending.all)")
        let campaign = try #require((try Self.json(pending.out)["campaign"] as? [String: Any])?["id"] as? String)
        let watcher = Task.detached { try Self.cli(["campaigns", "watch", campaign, "--interval", "0.2", "--timeout", "120"], home: home) }
        try await Task.sleep(for: .milliseconds(800))
        let cancel = try run(["campaigns", "cancel", campaign, "-o", "json"])
        let cancelStatus = try Self.json(cancel.out)["status"] as? String
        #expect(cancel.status == 0 && cancelStatus == "canceled", "\(cancel.all)")
        let canceled = try await watcher.value
        everything += canceled.all
        #expect(canceled.status == 2, "\(canceled.all)")
        #expect(canceled.out.contains("campaign canceled.") && canceled.err.contains("running"), "\(canceled.all)")
        let again = try run(["campaigns", "cancel", campaign])
        #expect(again.status == 4 && again.err.contains("invalid_campaign_state"), "\(again.all)")
        let campaigns = try run(["campaigns", "list", "-o", "json"])
        #expect(Self.ids(try Self.json(campaigns.out)).contains(campaign))
        let jobs = try run(["campaigns", "jobs", campaign, "-o", "json"])
        let job = try #require((try Self.json(jobs.out)["items"] as? [[String: Any]])?.first)
        #expect(job["device_id"] as? String == secondID && job["state"] as? String == "canceled", "\(jobs.out)")

        // Keys: created with its secret in a file, listed without it, used, revoked.
        let keyFile = home.path + "/viewer.key"
        let key = try run(["keys", "create", "--name", "dash", "--role", "viewer", "--secret-file", keyFile, "-o", "json"])
        #expect(key.status == 0, "\(key.all)")
        let keyID = try #require((try Self.json(key.out)["api_key"] as? [String: Any])?["id"] as? String)
        let secret = try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("fak_") && !key.all.contains(secret))
        let keys = try run(["keys", "list", "-o", "json"])
        #expect(Self.ids(try Self.json(keys.out)).contains(keyID) && !keys.out.contains(secret))
        // The viewer key (--key-file wins over the saved admin key) reads, but may not change anything (exit 5).
        let viewerRead = try run(["devices", "get", firstID, "--key-file", keyFile])
        #expect(viewerRead.status == 0 && viewerRead.out.contains("cam-1"), "\(viewerRead.all)")
        let viewerWrite = try run(["devices", "patch", firstID, "--name", "nope", "--key-file", keyFile])
        #expect(viewerWrite.status == 5 && viewerWrite.err.contains("insufficient_role"), "\(viewerWrite.all)")
        let revoke = try run(["keys", "revoke", keyID])
        #expect(revoke.status == 0, "\(revoke.all)")
        let revoked = try run(["devices", "list", "--key-file", keyFile])
        #expect(revoked.status == 5 && revoked.err.contains("api_key_revoked"), "\(revoked.all)")

        // The audit log shows what was done.
        let audit = try run(["audit", "list", "--limit", "200", "-o", "json"])
        #expect(audit.status == 0, "\(audit.all)")
        let entries = (try Self.json(audit.out)["items"] as? [[String: Any]]) ?? []
        func logged(_ method: String, _ route: String, _ status: Int) -> Bool {
            entries.contains { $0["method"] as? String == method && $0["route"] as? String == route && $0["status"] as? Int == status }
        }
        #expect(logged("POST", "/v1/devices", 201) && logged("PATCH", "/v1/devices/{id}", 200) && logged("PATCH", "/v1/devices/{id}", 412))
        #expect(logged("POST", "/v1/models", 201) && logged("POST", "/v1/domains", 201) && logged("POST", "/v1/campaigns/{id}/cancel", 200))
        #expect(logged("POST", "/v1/api-keys", 201) && logged("DELETE", "/v1/api-keys/{id}", 204) && logged("PATCH", "/v1/devices/{id}", 403))
        let auditTable = try run(["audit", "list", "--route", "/v1/api-keys/{id}"])
        #expect(auditTable.out.contains("DELETE") && auditTable.out.contains(keyID), "\(auditTable.out)")

        // Bad inputs: an unknown id (exit 3, the problem's code), a malformed flag value (exit 64, naming the flag).
        let missing = try run(["devices", "get", UUID().uuidString.lowercased()])
        #expect(missing.status == 3 && missing.err.contains("not_found") && missing.out.isEmpty, "\(missing.all)")
        let missingCampaign = try run(["campaigns", "watch", UUID().uuidString.lowercased()])
        #expect(missingCampaign.status == 3 && missingCampaign.err.contains("not_found"), "\(missingCampaign.all)")
        let badLabels = try run(["devices", "list", "--labels", "site"])
        #expect(badLabels.status == 64 && badLabels.err.contains("--labels"), "\(badLabels.all)")
        let badID = try run(["devices", "get", "not-a-uuid"])
        #expect(badID.status == 64 && badID.err.contains("<id>"), "\(badID.all)")
        let badFile = try run(["domains", "create", "--file", home.path + "/absent.json"])
        #expect(badFile.status == 1 && badFile.err.contains("--file"), "\(badFile.all)")
        let nothing = try run(["devices", "list"], environment: ["XDG_CONFIG_HOME": home.path + "/empty"])
        #expect(nothing.status == 1 && nothing.err.contains("fleetadapt login"), "\(nothing.all)")

        // The admin key was never printed, whatever the command.
        #expect(!everything.contains(admin))
        let logout = try run(["logout"])
        #expect(logout.status == 0 && !FileManager.default.fileExists(atPath: home.configFile))
    }

    /// A key file 0600 in `home`, and a login with it.
    static func login(_ c: TestCoordinator, home: Home) throws -> String {
        let keyFile = home.path + "/admin.key"
        guard FileManager.default.createFile(atPath: keyFile, contents: Data(TestCoordinator.adminKey.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TestFailure("cannot write \(keyFile)")
        }
        let login = try cli(["login", "--coordinator", c.baseURL, "--key-file", keyFile], home: home)
        guard login.status == 0 else { throw TestFailure("login: \(login.all)") }
        return keyFile
    }

    /// Drift triggers from the CLI: create (flags or a file), list, read, patch under If-Match, disable, enable,
    /// delete; bad flags are usage errors naming them, a refusal by the coordinator names the field.
    @Test func triggersAreManagedFromTheCLI() throws {
        let c = try TestCoordinator()
        let home = try Home()
        _ = try Self.login(c, home: home)
        var everything = ""
        func run(_ arguments: [String], columns: Int = 120) throws -> Run {
            let r = try Self.cli(arguments, home: home, columns: columns)
            everything += r.all
            return r
        }

        let created = try run(["triggers", "create", "--name", "fog-watch", "--labels", "site=berlin", "--metric", "entropy_rise",
                               "--threshold", "0.5", "--min-devices", "2", "--for-s", "60", "--loss", "tent", "--steps", "20",
                               "--cooldown-s", "600", "-o", "json"])
        #expect(created.status == 0, "\(created.all)")
        let trigger = try Self.json(created.out)
        let id = try #require(trigger["id"] as? String)
        let spec = try #require(trigger["spec"] as? [String: Any])
        #expect(trigger["enabled"] as? Bool == true && trigger["version"] as? Int == 1, "\(created.out)")
        #expect((spec["condition"] as? [String: Any])?["min_devices"] as? Int == 2 && spec["cooldown_s"] as? Int == 600, "\(created.out)")
        #expect(((spec["domain_template"] as? [String: Any])?["job"] as? [String: Any])?["loss"] as? String == "tent", "\(created.out)")
        #expect((spec["selector"] as? [String: Any])?["labels"] as? [String: String] == ["site": "berlin"], "\(created.out)")

        // From a file, created disabled.
        let file = home.path + "/trigger.json"
        try #"""
            {"name": "confidence-watch", "selector": {"labels": {"site": "paris"}}, "enabled": false,
             "condition": {"metric": "confidence_drop", "threshold": 0.2, "min_pct": 25},
             "domain_template": {"job": {"kind": "profile", "timeout_s": 300, "max_attempts": 1}}}
            """#.write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try run(["triggers", "create", "--file", file, "-o", "id"])
        #expect(fromFile.status == 0, "\(fromFile.all)")
        let second = fromFile.out.trimmingCharacters(in: .whitespacesAndNewlines)

        let table = try run(["triggers", "list"], columns: 100)
        #expect(table.status == 0 && table.out.hasPrefix("ID "), "\(table.all)")
        #expect(table.out.contains(id) && table.out.contains(second) && table.out.contains("CONDITION"), "\(table.out)")
        for line in table.out.split(separator: "\n") { #expect(line.count <= 100, "wider than 100: \(line)") }
        let wide = try run(["triggers", "list", "-o", "wide"], columns: 250)
        #expect(wide.out.contains("entropy_rise>0.5 on 2 device(s) for 60 s") && wide.out.contains("confidence_drop>0.2 on 25%"), "\(wide.out)")
        #expect(wide.out.contains("COOLDOWN S") && wide.out.contains("600"), "\(wide.out)")
        #expect(Set(try run(["triggers", "list", "-o", "id"]).out.split(separator: "\n").map(String.init)) == [id, second])
        let json = try run(["triggers", "get", id, "-o", "json"])
        let yaml = try run(["triggers", "get", id, "-o", "yaml"])
        #expect(try Self.yamlEqualsJSON(yaml.out, json.out, home: home), "\(yaml.out)")

        // patch changes only what its flags name; --min-pct replaces --min-devices.
        let patched = try run(["triggers", "patch", id, "--threshold", "0.8", "--min-pct", "50", "-o", "json"])
        #expect(patched.status == 0, "\(patched.all)")
        let condition = try #require((try Self.json(patched.out)["spec"] as? [String: Any])?["condition"] as? [String: Any])
        #expect(condition["threshold"] as? Double == 0.8 && condition["min_pct"] as? Double == 50 && condition["min_devices"] == nil
                && condition["for_s"] as? Int == 60 && condition["metric"] as? String == "entropy_rise", "\(patched.out)")
        #expect(try Self.json(patched.out)["version"] as? Int == 2)
        let disabled = try run(["triggers", "disable", id, "-o", "json"])
        let disabledNow = try Self.json(disabled.out)["enabled"] as? Bool
        #expect(disabled.status == 0 && disabledNow == false, "\(disabled.all)")
        let enabled = try run(["triggers", "enable", id, "-o", "json"])
        let enabledNow = try Self.json(enabled.out)["enabled"] as? Bool
        #expect(enabled.status == 0 && enabledNow == true, "\(enabled.all)")
        #expect(try Self.json(enabled.out)["version"] as? Int == 4)
        let stale = try run(["triggers", "patch", id, "--name", "late", "--if-match", "\"v1\""])
        #expect(stale.status == 4 && stale.err.contains("precondition_failed"), "\(stale.all)")

        // Refusals: usage errors (exit 64) name the flag; the coordinator's (exit 1) the field; nothing was created.
        let both = try run(["triggers", "create", "--name", "x", "--labels", "site=a", "--metric", "entropy_rise", "--threshold", "1",
                            "--min-devices", "1", "--min-pct", "5"])
        #expect(both.status == 64 && both.err.contains("--min-devices and --min-pct"), "\(both.all)")
        let metric = try run(["triggers", "create", "--name", "x", "--labels", "site=a", "--metric", "loudness", "--threshold", "1"])
        #expect(metric.status == 64 && metric.err.contains("--metric"), "\(metric.all)")
        let noThreshold = try run(["triggers", "create", "--name", "x", "--labels", "site=a", "--metric", "entropy_rise"])
        #expect(noThreshold.status == 64 && noThreshold.err.contains("--threshold"), "\(noThreshold.all)")
        let tooHigh = try run(["triggers", "create", "--name", "x", "--labels", "site=a", "--metric", "confidence_drop", "--threshold", "3"])
        #expect(tooHigh.status == 1 && tooHigh.err.contains("validation_failed") && tooHigh.err.contains("condition.threshold"), "\(tooHigh.all)")
        let nothing = try run(["triggers", "patch", id])
        #expect(nothing.status == 64 && nothing.err.contains("nothing to change"), "\(nothing.all)")
        #expect(Set(try run(["triggers", "list", "-o", "id"]).out.split(separator: "\n").map(String.init)) == [id, second])

        let deleted = try run(["triggers", "delete", id])
        #expect(deleted.status == 0 && deleted.out.contains("Trigger \(id) deleted."), "\(deleted.all)")
        let gone = try run(["triggers", "get", id])
        #expect(gone.status == 3 && gone.err.contains("not_found"), "\(gone.all)")
        #expect(try run(["triggers", "delete", id]).status == 3)
        #expect(!everything.contains(TestCoordinator.adminKey))
    }

    /// Runs `argv` on a pseudo-terminal `columns` wide (python3's pty module) and answers everything it wrote there
    /// (standard output and error, as a terminal shows them) and its exit status. What arrives is also appended to
    /// `transcript` as it comes, so a test can wait for a frame instead of sleeping.
    static func onTerminal(_ argv: [String], columns: Int, home: Home, transcript: String) throws -> (status: Int32, output: String) {
        let runner = """
            import fcntl, os, struct, subprocess, sys, termios
            columns, transcript, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
            master, slave = os.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
            child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
            os.close(slave)
            out = bytearray()
            with open(transcript, "ab", buffering=0) as seen:
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: the child has closed the terminal
                        break
                    if not chunk:
                        break
                    out += chunk
                    seen.write(chunk)
            status = child.wait()
            sys.stdout.buffer.write(bytes(out))
            sys.exit(status)
            """
        return try ChildProcess.run(["/usr/bin/python3", "-c", runner, String(columns), transcript] + argv,
                                    environment: ["PATH": "/usr/bin:/bin", "HOME": home.path, "XDG_CONFIG_HOME": home.path + "/config"])
    }

    /// Waits (up to a minute) until the terminal's transcript holds `count` frames of `campaign` that satisfy `frame`,
    /// and answers whether it did.
    static func waitForFrames(_ transcript: String, campaign: String, count: Int = 1, where frame: @escaping (String) -> Bool = { _ in true }) async throws -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: transcript, encoding: .utf8)) ?? ""
            // A frame: a header's status and what follows it up to the next header.
            let frames = text.components(separatedBy: "campaign \(campaign)").dropFirst()
            if frames.filter(frame).count >= count { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// `campaigns watch` on a real terminal redraws its lines in place (cursor up, erase line) while the campaign
    /// changes — a job canceled, then the campaign — and ends with the per-device table.
    @Test func watchRedrawsInPlaceOnATerminal() async throws {
        let c = try TestCoordinator()
        let home = try Home()
        _ = try Self.login(c, home: home)
        let model = try Self.cli(["models", "publish", "--package", FleetAdaptationTests.baseModel, "--name", "tty-model", "-o", "id"], home: home)
        #expect(model.status == 0 && UUID(uuidString: model.out.trimmingCharacters(in: .newlines)) != nil, "\(model.all)")
        for name in ["tty-1", "tty-2"] {
            let r = try Self.cli(["devices", "register", "--name", name, "--hardware-class", "jetson-tx2", "--gflops", "20", "--memory-mb", "4096",
                                  "--latency-budget-ms", "30", "--memory-budget-mb", "256", "--labels", "fleet=tty", "-o", "id"], home: home)
            #expect(r.status == 0 && UUID(uuidString: r.out.trimmingCharacters(in: .newlines)) != nil, "\(r.all)")
            #expect(r.err.contains("Device token (shown only now): fad_"), "-o id prints the token on standard error: \(r.err)")
        }
        let domain = try Self.cli(["domains", "create", "--name", "tty-domain", "--model", model.out.trimmingCharacters(in: .newlines),
                                   "--labels", "fleet=tty", "--canary-pct", "50", "--wave-size-pct", "50", "-o", "json"], home: home)
        #expect(domain.status == 0, "\(domain.all)")
        let campaign = try #require((try Self.json(domain.out)["campaign"] as? [String: Any])?["id"] as? String)

        let argv = [try BuiltProducts.path("fleetadapt"), "campaigns", "watch", campaign, "--interval", "0.2", "--timeout", "120"]
        let transcript = home.path + "/terminal.log"
        let watcher = Task.detached { try Self.onTerminal(argv, columns: 100, home: home, transcript: transcript) }
        // Each change waits for the frames that show the state before it (however slow the machine), not a fixed time.
        #expect(try await Self.waitForFrames(transcript, campaign: campaign, count: 3), "the watch drew no frames")
        let jobs = try await c.request("GET", "/v1/campaigns/\(campaign)/jobs")
        let job = try #require(((jobs.object?["items"] as? [[String: Any]]) ?? []).first?["id"] as? String, "\(jobs.text)")
        let canceledJob = try await c.request("POST", "/v1/campaigns/\(campaign)/jobs/\(job)/cancel")
        #expect(canceledJob.status == 200, "\(canceledJob.text)")
        #expect(try await Self.waitForFrames(transcript, campaign: campaign, count: 2) { $0.contains("canceled 1") && !$0.hasPrefix("  canceled") },
                "no frame showed the canceled job")
        let cancel = try Self.cli(["campaigns", "cancel", campaign], home: home)
        #expect(cancel.status == 0, "\(cancel.all)")
        let watched = try await watcher.value
        #expect(watched.status == 2, "\(watched.output)")
        let text = watched.output
        // Every frame erases and rewrites its lines; every frame after the first first moves the cursor back up over
        // the previous one (a header and one line per wave).
        let erase = "\r\u{1B}[2K"
        let ups = try NSRegularExpression(pattern: "\u{1B}\\[([0-9]+)A").matches(in: text, range: NSRange(text.startIndex..., in: text))
        #expect(ups.count >= 5, "\(ups.count) redraws: \(text.debugDescription)")
        // (The terminal ends lines with "\r\n", one Character, which a split on "\r" would not cut.)
        let lines = text.components(separatedBy: erase).map { $0.components(separatedBy: "\r\n").first ?? "" }
        #expect(lines.contains { $0.hasPrefix("wave 0 (canary)") } && lines.contains { $0.hasPrefix("wave 1") }, "\(text.debugDescription)")
        // The redraws show the campaign changing: a frame still running with a job canceled, then the campaign canceled.
        let heads = lines.indices.filter { lines[$0].hasPrefix("campaign \(campaign)") }
        #expect(heads.count == ups.count + 1, "one header per frame: \(text.debugDescription)")
        #expect(heads.first.map { lines[$0].contains("  running  ") } == true, "\(text.debugDescription)")
        // (A canceled canary job leaves its wave under the success threshold: the campaign may pause before it is canceled.)
        let midway = heads.contains { h in
            !lines[h].contains("  canceled") && lines[(h + 1)..<min(h + 4, lines.count)].contains { $0.contains("canceled 1") }
        }
        #expect(midway, "no frame showed the canceled job before the campaign's end: \(text.debugDescription)")
        // Every line fits the terminal (a paused campaign's reason is long): none wraps, so moving up redraws in place.
        for h in heads {
            for line in lines[h..<min(h + 3, lines.count)] { #expect(line.count < 100, "wider than the terminal: \(line)") }
        }
        #expect(heads.last.map { lines[$0].contains("  canceled") } == true, "\(text.debugDescription)")
        // Then the per-device table, with both devices, and the outcome.
        let header = try #require(text.range(of: "device              combination"), "\(text.debugDescription)")
        let finished = try #require(text.range(of: "campaign canceled."), "\(text.debugDescription)")
        let closing = text[header.lowerBound..<finished.lowerBound]
        #expect(closing.contains("tty-1") && closing.contains("tty-2"), "\(text.debugDescription)")
        #expect(!text.contains(TestCoordinator.adminKey))
    }

    /// Over HTTPS with a private CA: refused without it (or with another CA) and nothing saved; with `--ca-file`
    /// the login is checked and saved, and later commands use the saved CA.
    @Test func loginAndListOverHTTPSWithAPrivateCA() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeCA("other")
        try pki.makeServer("coordinator", commonName: "localhost")
        let c = try TestCoordinator(tls: TLSConfiguration(certificateFile: pki.path("coordinator.pem"), keyFile: pki.path("coordinator.key")))
        let home = try Home()
        let key = ["FLEETADAPT_KEY": TestCoordinator.adminKey]
        let untrusted = try Self.cli(["login", "--coordinator", c.baseURL], home: home, environment: key)
        #expect(untrusted.status == 1 && untrusted.err.hasPrefix("Error: "), "\(untrusted.all)")
        #expect(!FileManager.default.fileExists(atPath: home.configFile))
        let other = try Self.cli(["devices", "list", "--coordinator", c.baseURL, "--ca-file", pki.path("other.pem")], home: home, environment: key)
        #expect(other.status == 1, "\(other.all)")
        let login = try Self.cli(["login", "--coordinator", c.baseURL, "--ca-file", pki.path("ca.pem")], home: home, environment: key)
        #expect(login.status == 0, "\(login.all)")
        let listed = try Self.cli(["devices", "list", "-o", "json"], home: home)
        #expect(listed.status == 0 && (try? Self.json(listed.out))?["items"] != nil, "\(listed.all)")
        #expect(!(untrusted.all + other.all + login.all + listed.all).contains(TestCoordinator.adminKey))
    }

    /// `--help` of the admin commands at 80 columns, as argument-parser wraps it: the commands, their flags and
    /// their defaults stay as documented. A golden that differs prints the new text.
    @Test(arguments: AdminHelpGoldens.all.keys.sorted())
    func helpAtEightyColumns(_ command: String) throws {
        let arguments = command.split(separator: " ").map(String.init) + ["--help"]
        let r = try ChildProcess.run([try BuiltProducts.path("fleetadapt")] + arguments, environment: ["PATH": "/usr/bin:/bin", "COLUMNS": "80"])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output == AdminHelpGoldens.all[command], "fleetadapt \(command) --help is now:\n\(r.output)")
        // argument-parser wraps every paragraph but never the usage line.
        for line in r.output.split(separator: "\n") where !line.hasPrefix("USAGE:") { #expect(line.count <= 80, "wider than 80: \(line)") }
    }
}
