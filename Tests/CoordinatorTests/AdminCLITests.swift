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
