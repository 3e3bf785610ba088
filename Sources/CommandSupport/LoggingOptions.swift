import Foundation
import Logging
import Synchronization

/// `--log-format json|logfmt|text` and `--log-level trace|debug|info|notice|warning|error|critical`, which every
/// executable takes before or after its subcommand (also `FLEETADAPT_LOG_FORMAT` and `FLEETADAPT_LOG_LEVEL`).
/// They are taken off the command line before argument-parser parses it, so that one bootstrap serves every
/// command of every tool.
public struct LoggingOptions: Equatable, Sendable {
    public static let longNames = ["log-format", "log-level"]

    public var format: LogFormat = .text
    public var level: Logger.Level = .info

    public init(format: LogFormat = .text, level: Logger.Level = .info) {
        self.format = format
        self.level = level
    }

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    /// The options and the arguments without them; the command line wins over the environment.
    public static func extract(from arguments: [String], environment: [String: String]) throws -> (LoggingOptions, [String]) {
        var options = LoggingOptions()
        var format = environment["FLEETADAPT_LOG_FORMAT"].flatMap { $0.isEmpty ? nil : $0 }
        var level = environment["FLEETADAPT_LOG_LEVEL"].flatMap { $0.isEmpty ? nil : $0 }
        var rest: [String] = []
        var i = 0
        let terminator = arguments.firstIndex(of: "--") ?? arguments.endIndex
        while i < arguments.count {
            let word = arguments[i]
            var matched = false
            if i < terminator {
                for name in longNames {
                    var value: String?
                    if word == "--" + name {
                        guard i + 1 < arguments.count else { throw Problem(description: "Missing value for '--\(name) <\(name == "log-format" ? "format" : "level")>'") }
                        value = arguments[i + 1]
                        i += 1
                    } else if word.hasPrefix("--" + name + "=") {
                        value = String(word.dropFirst(name.count + 3))
                    }
                    if let value {
                        if name == "log-format" { format = value } else { level = value }
                        matched = true
                    }
                }
            }
            if !matched { rest.append(word) }
            i += 1
        }
        if let format {
            guard let f = LogFormat(rawValue: format.lowercased()) else {
                throw Problem(description: "--log-format must be one of json, logfmt, text (got '\(format)')")
            }
            options.format = f
        }
        if let level {
            guard let l = Logger.Level(rawValue: level.lowercased()) else {
                throw Problem(description: "--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(level)')")
            }
            options.level = l
        }
        return (options, rest)
    }
}

/// The process's logging, set once by `CommandMain` before the command runs.
public enum ProcessLogging {
    private static let chosen = Mutex(LoggingOptions())

    /// The options the process runs with (text/info until bootstrapped).
    public static var options: LoggingOptions { chosen.withLock { $0 } }

    /// Every Logger made after this writes through `FleetLogHandler` with these options; `fd` 2 is standard error.
    public static func bootstrap(_ options: LoggingOptions, fd: Int32 = 2) {
        chosen.withLock { $0 = options }
        LoggingSystem.bootstrap { label in FleetLogHandler(label: label, format: options.format, level: options.level, fd: fd) }
    }
}
