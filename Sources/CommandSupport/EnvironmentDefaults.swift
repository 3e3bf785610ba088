import ArgumentParser
import Foundation

/// Every flag of every executable can also be set from the environment: `--max-retry-delay` from
/// `FLEETADAPT_MAX_RETRY_DELAY`, `--tls-cert` from `FLEETADAPT_TLS_CERT`. One mechanism for all four tools: before
/// argument-parser sees the command line, the options of the command that will run (found from the command's
/// own help dump, `_dumpHelp()`, so no flag is ever forgotten) that the command line does not give are appended
/// from the environment. The command line always wins, and argument-parser validates an environment value
/// exactly like a typed one.
///
/// Flags take 1/true/yes/on (given) and 0/false/no/off (not given, or `--no-x` where the flag has an
/// inversion). A repeatable option takes one value from the environment. Empty values are ignored.
public enum EnvironmentDefaults {
    /// Options that are not configuration.
    static let excluded: Set<String> = ["help", "version", "experimental-dump-help", "generate-completion-script"]

    /// `FLEETADAPT_` + the long name upper-cased with `-` as `_`.
    public static func variable(for longName: String) -> String {
        "FLEETADAPT_" + longName.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// One option of one command, as the docs table and the tests see it.
    public struct Setting: Hashable, Sendable {
        public var command: String
        public var longName: String
        public var isFlag: Bool
        public var variable: String { EnvironmentDefaults.variable(for: longName) }
    }

    /// Every option of every command of `root` (subcommands included), with the two logging options every tool takes.
    public static func settings(of root: any ParsableCommand.Type) -> [Setting] {
        settings(dumpJSON: root._dumpHelp())
    }

    /// The same from a tool's `--experimental-dump-help` output.
    public static func settings(dumpJSON: String) -> [Setting] {
        guard let info = decode(dumpJSON) else { return [] }
        var out: [Setting] = []
        func walk(_ command: CommandDump, _ path: String) {
            for argument in command.arguments ?? [] {
                guard argument.kind != "positional", let long = argument.longName, !excluded.contains(long) else { continue }
                out.append(Setting(command: path, longName: long, isFlag: argument.kind == "flag"))
            }
            for sub in command.subcommands ?? [] { walk(sub, path + " " + sub.commandName) }
        }
        walk(info.command, info.command.commandName)
        for option in LoggingOptions.longNames { out.append(Setting(command: info.command.commandName, longName: option, isFlag: false)) }
        return out
    }

    /// `arguments` (without the program name) with the environment's values appended for the options of the
    /// command they select that they do not give.
    public static func apply(to arguments: [String], root: any ParsableCommand.Type,
                             environment: [String: String]) -> [String] {
        apply(to: arguments, dumpJSON: root._dumpHelp(), environment: environment)
    }

    /// The same for the tool whose `--experimental-dump-help` output is `dumpJSON`.
    public static func apply(to arguments: [String], dumpJSON: String, environment: [String: String]) -> [String] {
        guard let info = decode(dumpJSON) else { return arguments }
        let terminator = arguments.firstIndex(of: "--") ?? arguments.endIndex
        let given = Array(arguments[..<terminator])
        // The command that runs: follow subcommand names, then the default subcommand.
        var command = info.command
        for word in given where !word.hasPrefix("-") {
            guard let sub = command.subcommands?.first(where: { $0.commandName == word || ($0.aliases ?? []).contains(word) }) else { break }
            command = sub
        }
        while let name = command.defaultSubcommand, let sub = command.subcommands?.first(where: { $0.commandName == name }) {
            command = sub
        }
        var added: [String] = []
        for argument in command.arguments ?? [] {
            guard argument.kind != "positional", let long = argument.longName, !excluded.contains(long) else { continue }
            let names = (argument.names ?? []).map { $0.kind == "short" ? "-" + $0.name : ($0.kind == "long" ? "--" : "-") + $0.name }
            let present = given.contains { word in names.contains { word == $0 || word.hasPrefix($0 + "=") } }
            guard !present, let raw = environment[variable(for: long)] else { continue }
            let value = raw.trimmingCharacters(in: .whitespaces)
            guard !value.isEmpty else { continue }
            if argument.kind == "flag" {
                switch value.lowercased() {
                case "1", "true", "yes", "on": added.append("--" + long)
                case "0", "false", "no", "off":
                    if let negative = argument.names?.first(where: { $0.kind == "long" && $0.name == "no-" + long }) { added.append("--" + negative.name) }
                default: added.append("--" + long + "=" + value) // argument-parser rejects it with the flag's name
                }
            } else {
                added.append("--" + long + "=" + value)
            }
        }
        var out = given + added
        out.append(contentsOf: arguments[terminator...])
        return out
    }

    // MARK: - The help dump, as much of it as this needs

    struct ToolDump: Decodable { var command: CommandDump }
    struct CommandDump: Decodable {
        var commandName: String
        var aliases: [String]?
        var defaultSubcommand: String?
        var subcommands: [CommandDump]?
        var arguments: [ArgumentDump]?
    }
    struct ArgumentDump: Decodable {
        struct Name: Decodable { var kind: String; var name: String }
        var kind: String
        var names: [Name]?
        var preferredName: Name?
        var longName: String? {
            if let p = preferredName, p.kind == "long" { return p.name }
            return names?.first { $0.kind == "long" && !$0.name.hasPrefix("no-") }?.name ?? names?.first { $0.kind == "long" }?.name
        }
    }

    static func decode(_ json: String) -> ToolDump? {
        try? JSONDecoder().decode(ToolDump.self, from: Data(json.utf8))
    }

    /// The docs' configuration table: one row per option of every command of the tools whose dumps are given.
    public static func markdownTable(dumps: [String]) -> String {
        var rows = ["| Variable | Flag | Command |", "| --- | --- | --- |"]
        for dump in dumps {
            var seen: [String: [String]] = [:]
            var order: [String] = []
            for s in settings(dumpJSON: dump) {
                if seen[s.longName] == nil { order.append(s.longName) }
                seen[s.longName, default: []].append(s.command)
            }
            for name in order {
                let commands = seen[name]!.map { "`\($0)`" }.joined(separator: ", ")
                rows.append("| `\(variable(for: name))` | `--\(name)` | \(commands) |")
            }
        }
        return rows.joined(separator: "\n") + "\n"
    }
}
