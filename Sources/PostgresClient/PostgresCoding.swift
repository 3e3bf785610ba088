import Foundation

/// A Swift value sent as a text-format parameter of a known type.
public protocol PostgresEncodable: Sendable {
    var postgresText: String { get }
    static var postgresTypeOID: UInt32 { get }
}

/// A Swift value read from a column's text output (sessions run with TimeZone=UTC, DateStyle=ISO).
public protocol PostgresDecodable {
    init(postgresText: String) throws
}

/// Thrown by `init(postgresText:)`; the row decoder adds the column, index and type.
struct PostgresValueError: Error {
    let reason: String
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { self }
    public static var postgresTypeOID: UInt32 { 25 }
    public init(postgresText: String) { self = postgresText }
}

extension Int: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { String(self) }
    public static var postgresTypeOID: UInt32 { 20 }
    public init(postgresText: String) throws {
        guard let v = Int(postgresText) else { throw PostgresValueError(reason: "'\(postgresText)' is not an integer") }
        self = v
    }
}

extension Int64: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { String(self) }
    public static var postgresTypeOID: UInt32 { 20 }
    public init(postgresText: String) throws {
        guard let v = Int64(postgresText) else { throw PostgresValueError(reason: "'\(postgresText)' is not an integer") }
        self = v
    }
}

extension Int32: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { String(self) }
    public static var postgresTypeOID: UInt32 { 23 }
    public init(postgresText: String) throws {
        guard let v = Int32(postgresText) else { throw PostgresValueError(reason: "'\(postgresText)' is not a 32-bit integer") }
        self = v
    }
}

extension Double: PostgresEncodable, PostgresDecodable {
    /// Shortest round-tripping form; PostgreSQL spells the special values Infinity, -Infinity, NaN.
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return "\(self)"
    }
    public static var postgresTypeOID: UInt32 { 701 }
    public init(postgresText: String) throws {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let v = Double(postgresText) else { throw PostgresValueError(reason: "'\(postgresText)' is not a number") }
            self = v
        }
    }
}

extension Float: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { Double(self).postgresText }
    public static var postgresTypeOID: UInt32 { 700 }
    public init(postgresText: String) throws { self = Float(try Double(postgresText: postgresText)) }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { self ? "true" : "false" }
    public static var postgresTypeOID: UInt32 { 16 }
    public init(postgresText: String) throws {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresValueError(reason: "'\(postgresText)' is not a boolean")
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { uuidString.lowercased() }
    public static var postgresTypeOID: UInt32 { 2950 }
    public init(postgresText: String) throws {
        guard let v = UUID(uuidString: postgresText) else { throw PostgresValueError(reason: "'\(postgresText)' is not a UUID") }
        self = v
    }
}

extension Date: PostgresEncodable, PostgresDecodable {
    /// Microseconds since the epoch, written as an explicit UTC timestamp.
    public var postgresText: String {
        let micros = (timeIntervalSince1970 * 1_000_000).rounded()
        return PostgresTimestamp.format(micros: Int64(micros))
    }
    public static var postgresTypeOID: UInt32 { 1184 }
    public init(postgresText: String) throws {
        guard let micros = PostgresTimestamp.parse(postgresText) else {
            throw PostgresValueError(reason: "'\(postgresText)' is not an ISO timestamp")
        }
        self = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }
}

/// bytea: sent as a binary parameter, read from the hex output format (`\x0a1b…`).
extension Array: PostgresEncodable where Element == UInt8 {
    public var postgresText: String { "\\x" + map { String(format: "%02x", $0) }.joined() }
    public static var postgresTypeOID: UInt32 { 17 }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public init(postgresText: String) throws {
        self = try Element.decodeArray(postgresText)
    }
}

/// Types that can sit in a one-dimensional PostgreSQL array (and bytea, which decodes from hex).
public protocol PostgresArrayElement {
    static func decodeArray(_ text: String) throws -> [Self]
}

extension UInt8: PostgresArrayElement {
    public static func decodeArray(_ text: String) throws -> [UInt8] {
        let u = Array(text.utf8)
        guard u.count >= 2, u[0] == UInt8(ascii: "\\"), u[1] == UInt8(ascii: "x"), u.count % 2 == 0 else {
            throw PostgresValueError(reason: "bytea is not in hex format")
        }
        var out = [UInt8]()
        out.reserveCapacity((u.count - 2) / 2)
        var i = 2
        while i < u.count {
            guard let hi = hexNibble(u[i]), let lo = hexNibble(u[i + 1]) else { throw PostgresValueError(reason: "bad hex in bytea") }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func hexNibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
}

/// Arrays of text-like elements: `{a,"b c",NULL}` with `"` and `\` escaped inside quotes.
public protocol PostgresTextArrayElement: PostgresEncodable, PostgresDecodable, PostgresArrayElement {
    static var postgresArrayTypeOID: UInt32 { get }
}

extension PostgresTextArrayElement {
    public static func decodeArray(_ text: String) throws -> [Self] {
        try PostgresArrayLiteral.parse(text).map { element in
            guard let element else { throw PostgresValueError(reason: "array holds NULL") }
            return try Self(postgresText: element)
        }
    }
}

extension String: PostgresTextArrayElement { public static var postgresArrayTypeOID: UInt32 { 1009 } }
extension Int: PostgresTextArrayElement { public static var postgresArrayTypeOID: UInt32 { 1016 } }
extension Int64: PostgresTextArrayElement { public static var postgresArrayTypeOID: UInt32 { 1016 } }
extension Int32: PostgresTextArrayElement { public static var postgresArrayTypeOID: UInt32 { 1007 } }
extension Double: PostgresTextArrayElement { public static var postgresArrayTypeOID: UInt32 { 1022 } }
extension Bool: PostgresTextArrayElement { public static var postgresArrayTypeOID: UInt32 { 1000 } }
extension UUID: PostgresTextArrayElement { public static var postgresArrayTypeOID: UInt32 { 2951 } }

/// A one-dimensional array parameter such as `[String]` or `[UUID]`: `\(PostgresArray(ids))`.
public struct PostgresArray<Element: PostgresTextArrayElement>: PostgresEncodable {
    public var elements: [Element]
    public init(_ elements: [Element]) { self.elements = elements }
    public var postgresText: String { PostgresArrayLiteral.format(elements.map(\.postgresText)) }
    public static var postgresTypeOID: UInt32 { Element.postgresArrayTypeOID }
}

/// A jsonb parameter from JSON text.
public struct PostgresJSONB: PostgresEncodable {
    public var json: String
    public init(json: String) { self.json = json }
    public var postgresText: String { json }
    public static var postgresTypeOID: UInt32 { 3802 }
}

enum PostgresArrayLiteral {
    static func format(_ items: [String]) -> String {
        var out = "{"
        for (i, item) in items.enumerated() {
            if i > 0 { out += "," }
            out += "\""
            for ch in item.unicodeScalars {
                if ch == "\"" || ch == "\\" { out += "\\" }
                out.unicodeScalars.append(ch)
            }
            out += "\""
        }
        return out + "}"
    }

    static func parse(_ text: String) throws -> [String?] {
        var s = Array(text.unicodeScalars)[...]
        guard s.first == "{", s.last == "}" else { throw PostgresValueError(reason: "'\(text)' is not an array literal") }
        s = s.dropFirst().dropLast()
        var out: [String?] = []
        if s.isEmpty { return out }
        while true {
            var item = ""
            if s.first == "\"" {
                s = s.dropFirst()
                while let c = s.first, c != "\"" {
                    s = s.dropFirst()
                    if c == "\\", let n = s.first {
                        item.unicodeScalars.append(n)
                        s = s.dropFirst()
                    } else {
                        item.unicodeScalars.append(c)
                    }
                }
                guard s.first == "\"" else { throw PostgresValueError(reason: "unterminated array element") }
                s = s.dropFirst()
                out.append(item)
            } else {
                while let c = s.first, c != "," {
                    item.unicodeScalars.append(c)
                    s = s.dropFirst()
                }
                out.append(item == "NULL" ? nil : item)
            }
            guard let c = s.first else { break }
            guard c == "," else { throw PostgresValueError(reason: "malformed array literal") }
            s = s.dropFirst()
        }
        return out
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]+00` in and out, in UTC, with microseconds.
enum PostgresTimestamp {
    static func format(micros: Int64) -> String {
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        guard (0...9999).contains(parts.tm_year + 1900) else {
            return String(format: "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                          parts.tm_hour, parts.tm_min, parts.tm_sec, Int32(fraction))
        }
        // Digits written directly (String(format:) is slow, and every time parameter passes here).
        var out = [UInt8]()
        out.reserveCapacity(29)
        func put(_ value: Int, _ width: Int, then separator: String) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var v = value
            while divisor > 0 {
                out.append(UInt8(48 + (v / divisor) % 10))
                v %= divisor
                divisor /= 10
            }
            out.append(contentsOf: separator.utf8)
        }
        put(Int(parts.tm_year) + 1900, 4, then: "-")
        put(Int(parts.tm_mon) + 1, 2, then: "-")
        put(Int(parts.tm_mday), 2, then: " ")
        put(Int(parts.tm_hour), 2, then: ":")
        put(Int(parts.tm_min), 2, then: ":")
        put(Int(parts.tm_sec), 2, then: ".")
        put(Int(fraction), 6, then: "+00")
        return String(decoding: out, as: UTF8.self)
    }

    static func parse(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= u.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                guard (48...57).contains(u[i]) else { return nil }
                v = v * 10 + Int(u[i] - 48)
            }
            return v
        }
        guard u.count >= 19, let year = num(0, 4), let month = num(5, 2), let day = num(8, 2),
              let hour = num(11, 2), let minute = num(14, 2), let second = num(17, 2) else { return nil }
        var i = 19
        var micros = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < u.count, (48...57).contains(u[i]) {
                if digits < 6 { micros = micros * 10 + Int(u[i] - 48) }
                digits += 1
                i += 1
            }
            for _ in digits..<6 where digits < 6 { micros *= 10 }
        }
        var offsetSeconds = 0
        if i < u.count, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") {
            let sign = u[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = num(i + 1, 2) else { return nil }
            var om = 0
            if i + 3 < u.count, u[i + 3] == UInt8(ascii: ":"), let m = num(i + 4, 2) { om = m }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let epoch = Int64(timegm(&parts)) - Int64(offsetSeconds)
        return epoch * 1_000_000 + Int64(micros)
    }
}
