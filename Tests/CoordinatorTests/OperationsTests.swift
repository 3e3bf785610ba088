import CommandSupport
import Foundation
import Synchronization
@testable import PostgresClient
import Testing
import TestSupport

/// The four real executables as an operator runs them: `--version`, runtime errors, FLEETADAPT_* configuration,
/// structured logs without secrets.
@Suite struct OperationsTests {
    static let tools = ["fleetadapt", "fleetadapt-coordinator", "fleetadapt-agent", "fleetadapt-edge"]

    @Test func versionOnEveryExecutable() throws {
        for tool in Self.tools {
            let r = try ChildProcess.run([try BuiltProducts.path(tool), "--version"],
                                         environment: ["PATH": "/usr/bin:/bin", "FLEETADAPT_GIT_REVISION": "abc1234"])
            #expect(r.status == 0, "\(tool): \(r.output)")
            #expect(r.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(FleetAdaptVersion.version) (revision abc1234)", "\(tool)")
            let unknown = try ChildProcess.run([try BuiltProducts.path(tool), "--version"], environment: ["PATH": "/usr/bin:/bin"])
            #expect(unknown.output.contains("(revision unknown)"), "\(tool): \(unknown.output)")
        }
    }

    @Test func runtimeErrorsExitOneWithTheErrorAlone() throws {
        let dir = NSTemporaryDirectory() + "fleetadapt-ops-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // An unreadable token file: the agent's arguments are valid, the run fails.
        let agent = try ChildProcess.run([try BuiltProducts.path("fleetadapt-agent"), "--data-dir", dir, "--token-file", dir + "/missing-token"],
                                         environment: ["PATH": "/usr/bin:/bin"])
        #expect(agent.status == 1, "\(agent.output)")
        #expect(agent.output.hasPrefix("Error: "), "\(agent.output)")
        #expect(!agent.output.lowercased().contains("usage:"), "\(agent.output)")
        // A database nobody serves: the coordinator's start fails at run time.
        let coordinator = try ChildProcess.run([try BuiltProducts.path("fleetadapt-coordinator"), "serve", "--data-dir", dir,
                                                "--database-url", "postgres://nobody@127.0.0.1:1/none"],
                                               environment: ["PATH": "/usr/bin:/bin"])
        #expect(coordinator.status == 1, "\(coordinator.output)")
        #expect(coordinator.output.contains("Error: "), "\(coordinator.output)")
        #expect(!coordinator.output.lowercased().contains("usage:"), "\(coordinator.output)")
        // A usage error keeps argument-parser's usage and its exit status.
        let usage = try ChildProcess.run([try BuiltProducts.path("fleetadapt-edge"), "--port", "many"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(usage.status == 64, "\(usage.output)")
        #expect(usage.output.lowercased().contains("usage:"), "\(usage.output)")
    }

    /// Help paragraphs reach argument-parser as single lines, so it wraps them once, to the terminal: in every
    /// command's discussion of every tool, no two lines in a row start at the margin (indented lines — examples,
    /// lists — are kept as written).
    @Test func helpParagraphsAreWrappedOnlyByArgumentParser() throws {
        var discussions = 0
        for tool in Self.tools {
            let dump = try Self.dump(tool)
            func walk(_ command: [String: Any], _ path: String) {
                let name = path.isEmpty ? (command["commandName"] as? String ?? tool) : path + " " + (command["commandName"] as? String ?? "")
                if let text = command["discussion"] as? String {
                    discussions += 1
                    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                    for (a, b) in zip(lines, lines.dropFirst()) where !a.isEmpty && !b.isEmpty && a.first != " " && b.first != " " {
                        Issue.record("\(name): a paragraph is broken by hand after \"\(a.suffix(40))\"")
                    }
                }
                for sub in command["subcommands"] as? [[String: Any]] ?? [] { walk(sub, name) }
            }
            let json = try #require(try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])
            walk(try #require(json["command"] as? [String: Any]), "")
        }
        #expect(discussions >= 15)
        // The joining itself: paragraphs become one line, list items absorb their continuation, examples and shell
        // continuations keep their breaks.
        #expect(HelpText.reflow("One two\nthree.\n\nNext:\n  item  a b\n        c\n  cmd \\\n    --flag") ==
                "One two three.\n\nNext:\n  item  a b c\n  cmd \\\n    --flag")
    }

    static func dump(_ tool: String) throws -> String {
        let r = try ChildProcess.run([try BuiltProducts.path(tool), "--experimental-dump-help"], environment: ["PATH": "/usr/bin:/bin"])
        guard r.status == 0 else { throw TestFailure("\(tool) --experimental-dump-help: \(r.output)") }
        return r.output
    }

    /// Every option of every command of every tool, read from the tool's own help dump, is filled from its
    /// FLEETADAPT_* variable when the command line does not give it, and the command line wins.
    @Test func everyOptionIsSettableFromTheEnvironment() throws {
        var count = 0
        for tool in Self.tools {
            let dump = try Self.dump(tool)
            let settings = EnvironmentDefaults.settings(dumpJSON: dump)
            #expect(settings.count > 2, "\(tool) has options")
            for setting in settings where !LoggingOptions.longNames.contains(setting.longName) {
                let path = Array(setting.command.split(separator: " ").dropFirst().map(String.init))
                let value = "v-\(count)"
                let argv = EnvironmentDefaults.apply(to: path, dumpJSON: dump, environment: [setting.variable: setting.isFlag ? "true" : value])
                let expected = setting.isFlag ? "--\(setting.longName)" : "--\(setting.longName)=\(value)"
                #expect(argv == path + [expected], "\(setting.command) --\(setting.longName) from \(setting.variable): \(argv)")
                let given = EnvironmentDefaults.apply(to: path + ["--\(setting.longName)=cli"], dumpJSON: dump,
                                                      environment: [setting.variable: setting.isFlag ? "true" : value])
                #expect(given == path + ["--\(setting.longName)=cli"], "the command line wins for \(setting.variable)")
                count += 1
            }
        }
        #expect(count > 50)
        // And the real executables read them: a value the command's own validation refuses, from the environment.
        let coordinator = try ChildProcess.run([try BuiltProducts.path("fleetadapt-coordinator"), "serve"],
                                               environment: ["PATH": "/usr/bin:/bin", "FLEETADAPT_THREADS": "0"])
        #expect(coordinator.status == 64 && coordinator.output.contains("--threads must be 1–256"), "\(coordinator.output)")
        let agent = try ChildProcess.run([try BuiltProducts.path("fleetadapt-agent"), "--token", "t"],
                                         environment: ["PATH": "/usr/bin:/bin", "FLEETADAPT_DATA_DIR": "/nonexistent", "FLEETADAPT_POLL_WAIT": "99"])
        #expect(agent.status == 64 && agent.output.contains("--poll-wait must be 1–60"), "\(agent.output)")
        let edge = try ChildProcess.run([try BuiltProducts.path("fleetadapt-edge")],
                                        environment: ["PATH": "/usr/bin:/bin", "FLEETADAPT_MAX_SESSIONS": "0"])
        #expect(edge.status == 64 && edge.output.contains("--max-sessions must be at least 1"), "\(edge.output)")
        let format = try ChildProcess.run([try BuiltProducts.path("fleetadapt-edge")],
                                          environment: ["PATH": "/usr/bin:/bin", "FLEETADAPT_LOG_FORMAT": "xml"])
        #expect(format.status == 64 && format.output.contains("--log-format must be one of json, logfmt, text"), "\(format.output)")
    }

    /// docs/operations.md holds the table the tools' dumps give, between its markers.
    @Test func docsConfigurationTableMatchesTheTools() throws {
        let table = EnvironmentDefaults.markdownTable(dumps: try Self.tools.map(Self.dump))
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/operations.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let begin = "<!-- configuration table: generated by OperationsTests.docsConfigurationTableMatchesTheTools -->\n"
        let end = "<!-- end of configuration table -->"
        guard let start = text.range(of: begin), let stop = text.range(of: end, range: start.upperBound..<text.endIndex) else {
            try table.write(toFile: NSTemporaryDirectory() + "fleetadapt-configuration-table.md", atomically: true, encoding: .utf8)
            Issue.record("docs/operations.md lacks the table markers; the table is in $TMPDIR/fleetadapt-configuration-table.md")
            return
        }
        let current = String(text[start.upperBound..<stop.lowerBound])
        if current != table {
            try table.write(toFile: NSTemporaryDirectory() + "fleetadapt-configuration-table.md", atomically: true, encoding: .utf8)
        }
        #expect(current == table, "docs/operations.md's table differs from the tools' options: the current one is in $TMPDIR/fleetadapt-configuration-table.md")
    }
}

/// A URI for the test cluster's database (the executables take --database-url).
func databaseURL(_ configuration: PostgresConfiguration) -> String {
    var parts: [String: String] = [:]
    for (k, v) in configuration.keywords { parts[k] = v }
    func q(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }
    var url = "postgresql:///\(q(parts["dbname"] ?? "postgres"))?host=\(q(parts["host"] ?? "/tmp"))"
    if let port = parts["port"] { url += "&port=\(port)" }
    if let user = parts["user"] { url += "&user=\(q(user))" }
    if let password = parts["password"] { url += "&password=\(q(password))" }
    return url
}

/// A real `fleetadapt-coordinator serve` child whose standard error is collected as it runs.
final class CoordinatorProcess {
    final class Collected: Sendable {
        let data = Mutex(Data())
    }
    let process = Process()
    private let collected = Collected()
    let dataDirectory = NSTemporaryDirectory() + "fleetadapt-coordinator-proc-" + UUID().uuidString

    init(arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.path("fleetadapt-coordinator"))
        process.arguments = ["serve", "--port", "0", "--data-dir", dataDirectory] + arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        pipe.fileHandleForReading.readabilityHandler = { [collected] handle in
            let data = handle.availableData
            guard !data.isEmpty else { return }
            collected.data.withLock { $0.append(data) }
        }
        try process.run()
    }

    var output: String { collected.data.withLock { String(decoding: $0, as: UTF8.self) } }

    /// Waits (up to two minutes) for a line containing `marker`.
    func waitFor(_ marker: String) throws -> String {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let line = output.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
            guard process.isRunning else { throw TestFailure("the coordinator exited: \(output)") }
            usleep(50_000)
        }
        throw TestFailure("no '\(marker)' within two minutes: \(output)")
    }

    func stop() -> String {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        usleep(200_000)
        try? FileManager.default.removeItem(atPath: dataDirectory)
        return output
    }
}
