import Foundation
import Logging

/// `--log-format`: one line per event on standard error (the agent: standard output, where it always logged).
public enum LogFormat: String, CaseIterable, Sendable {
    /// `{"time":…,"level":…,"label":…,"message":…, metadata…}`: one JSON object per line.
    case json
    /// `time=… level=… label=… msg="…" key=value…`
    case logfmt
    /// `time level message key=value…`, for people.
    case text
}

/// The three handlers in one: a line is built whole, then written with one write(2), so lines of several threads
/// never interleave and none waits in a stdio buffer when the process dies.
public struct FleetLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: LogFormat
    let fd: Int32

    public init(label: String, format: LogFormat, level: Logger.Level, fd: Int32 = 2) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.fd = fd
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var line = Self.render(format: format, time: Date(), level: event.level, label: label,
                               message: event.message.description, metadata: merged)
        line.append("\n")
        line.withUTF8 { buffer in _ = Foundation.write(fd, buffer.baseAddress, buffer.count) }
    }

    public static func render(format: LogFormat, time: Date, level: Logger.Level, label: String, message: String,
                              metadata: Logger.Metadata) -> String {
        let stamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(time)
        let keys = metadata.keys.sorted()
        switch format {
        case .json:
            var out = "{\"time\":\(jsonString(stamp)),\"level\":\(jsonString(level.rawValue)),\"label\":\(jsonString(label)),\"message\":\(jsonString(message))"
            for key in keys where !["time", "level", "label", "message"].contains(key) {
                out += ",\(jsonString(key)):\(json(metadata[key]!))"
            }
            return out + "}"
        case .logfmt:
            var out = "time=\(stamp) level=\(level.rawValue) label=\(logfmtValue(label)) msg=\(logfmtValue(message))"
            for key in keys { out += " \(logfmtKey(key))=\(logfmtValue(flat(metadata[key]!)))" }
            return out
        case .text:
            var out = "\(stamp) \(level.rawValue) \(escapingControls(message))"
            for key in keys { out += " \(logfmtKey(key))=\(logfmtValue(flat(metadata[key]!)))" }
            return out
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return jsonString(s)
        case .stringConvertible(let c):
            if let n = c as? any BinaryInteger { return "\(n)" }
            if let d = c as? Double, d.isFinite { return "\(d)" }
            if let b = c as? Bool { return b ? "true" : "false" }
            return jsonString(c.description)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { "\(jsonString($0)):\(json(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    static func flat(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return "[" + a.map(flat).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { "\($0)=\(flat(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func logfmtKey(_ key: String) -> String {
        String(key.unicodeScalars.map { scalar -> Character in
            let allowed = scalar.properties.isAlphabetic || (48...57).contains(scalar.value) || "_.-".unicodeScalars.contains(scalar)
            return allowed ? Character(scalar) : "_"
        })
    }

    /// Bare when it has no space, quote, `=` or control character; else quoted with JSON's escapes.
    static func logfmtValue(_ s: String) -> String {
        if !s.isEmpty, !s.unicodeScalars.contains(where: { $0.value <= 0x20 || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.value == 0x7F || (0x80...0x9F).contains($0.value) }) {
            return s
        }
        return jsonString(s)
    }

    static func escapingControls(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return s }
        return String(jsonString(s).dropFirst().dropLast())
    }
}
