import CommandSupport
import Foundation

/// A JSON value as the coordinator sent it: object keys in their order and numbers as their text, so tables and
/// YAML render exactly what is on the wire (no `Double` rounding of an id, no reordered fields). Parsed by a small
/// recursive-descent reader, bounded in depth, since an answer is still input.
indirect enum JSONDocument: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONDocument])
    case object([(String, JSONDocument)])

    static func == (a: JSONDocument, b: JSONDocument) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    static let maxDepth = 128

    static func parse(_ data: Data) throws -> JSONDocument {
        var reader = Reader(bytes: Array(data))
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.at == reader.bytes.count else { throw ParseError(description: "the answer has bytes after its JSON value") }
        return value
    }

    // MARK: - Access

    /// The member `key` of an object; `.null` for anything else (tables show it as absent).
    subscript(key: String) -> JSONDocument {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 ?? .null }
        return .null
    }

    var items: [JSONDocument] {
        if case .array(let a) = self { return a }
        return []
    }

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var number: Double? {
        if case .number(let n) = self { return Double(n) }
        return nil
    }

    var isNull: Bool { self == .null }

    /// A one-line text for a table cell: strings as they are, labels as `k=v,k2=v2`, lists comma-separated,
    /// RFC 3339 times to the second, and `-` for absent values.
    var cell: String {
        switch self {
        case .null: return "-"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n
        case .string(let s): return Self.shortTime(s) ?? s.replacingOccurrences(of: "\n", with: " ")
        case .array(let a): return a.isEmpty ? "-" : a.map(\.cell).joined(separator: ",")
        case .object(let m): return m.isEmpty ? "-" : m.map { "\($0.0)=\($0.1.cell)" }.joined(separator: ",")
        }
    }

    /// `2026-12-02T02:33:51.123Z` → `2026-12-02T02:33:51Z`; nil for anything that is not such a time.
    static func shortTime(_ s: String) -> String? {
        let b = Array(s.utf8)
        guard b.count > 20, b.count <= 35, b[4] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"), b[19] == UInt8(ascii: "."),
              b.last == UInt8(ascii: "Z"), b[20..<(b.count - 1)].allSatisfy({ (48...57).contains($0) }) else { return nil }
        return String(decoding: b[0..<19], as: UTF8.self) + "Z"
    }

    // MARK: - JSON out (for merged pages)

    var json: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n
        case .string(let s): return Self.quoted(s)
        case .array(let a): return "[" + a.map(\.json).joined(separator: ",") + "]"
        case .object(let m): return "{" + m.map { Self.quoted($0.0) + ":" + $0.1.json }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (also a valid YAML double-quoted scalar: control characters escaped).
    static func quoted(_ s: String) -> String { FleetLogHandler.jsonString(s) }

    // MARK: - Reader

    struct Reader {
        let bytes: [UInt8]
        var at = 0

        mutating func skipSpace() {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
        }

        func fail(_ what: String) -> ParseError { ParseError(description: "the answer is not JSON: \(what) at byte \(at)") }

        mutating func literal(_ word: String, _ value: JSONDocument) throws -> JSONDocument {
            let w = Array(word.utf8)
            guard at + w.count <= bytes.count, Array(bytes[at..<(at + w.count)]) == w else { throw fail("unexpected text") }
            at += w.count
            return value
        }

        mutating func value(depth: Int) throws -> JSONDocument {
            guard depth < JSONDocument.maxDepth else { throw fail("nesting too deep") }
            guard at < bytes.count else { throw fail("unexpected end") }
            switch bytes[at] {
            case UInt8(ascii: "n"): return try literal("null", .null)
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["):
                at += 1
                var out: [JSONDocument] = []
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(out) }
                while true {
                    skipSpace()
                    out.append(try value(depth: depth + 1))
                    skipSpace()
                    guard at < bytes.count else { throw fail("unterminated array") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    guard bytes[at] == UInt8(ascii: "]") else { throw fail("expected , or ]") }
                    at += 1
                    return .array(out)
                }
            case UInt8(ascii: "{"):
                at += 1
                var out: [(String, JSONDocument)] = []
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(out) }
                while true {
                    skipSpace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let key = try string()
                    skipSpace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("expected :") }
                    at += 1
                    skipSpace()
                    out.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard at < bytes.count else { throw fail("unterminated object") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    guard bytes[at] == UInt8(ascii: "}") else { throw fail("expected , or }") }
                    at += 1
                    return .object(out)
                }
            default:
                let start = at
                while at < bytes.count, "+-0123456789.eE".utf8.contains(bytes[at]) { at += 1 }
                let text = String(decoding: bytes[start..<at], as: UTF8.self)
                guard !text.isEmpty, Double(text) != nil else { throw fail("unexpected character") }
                return .number(text)
            }
        }

        mutating func string() throws -> String {
            at += 1  // the opening quote
            var scalars = String.UnicodeScalarView()
            var run = [UInt8]()
            func flush() { scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars); run.removeAll() }
            while at < bytes.count {
                let b = bytes[at]
                if b == UInt8(ascii: "\"") { at += 1; flush(); return String(scalars) }
                if b == UInt8(ascii: "\\") {
                    flush()
                    guard at + 1 < bytes.count else { break }
                    let e = bytes[at + 1]
                    at += 2
                    switch e {
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        if (0xD800...0xDBFF).contains(code), at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") {
                            at += 2
                            let low = try hex4()
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                    default: scalars.append(Unicode.Scalar(e))
                    }
                    continue
                }
                run.append(b)
                at += 1
            }
            throw fail("unterminated string")
        }

        mutating func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16) else {
                throw fail("bad \\u escape")
            }
            at += 4
            return v
        }
    }
}
