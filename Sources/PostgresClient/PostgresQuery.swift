/// SQL whose interpolated values become `$n` parameters, so a value can never change the statement.
/// Raw text must be asked for by name: `\(unsafeRaw: "...")`.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    public var sql: String
    public var binds: [PostgresBind]

    public init(stringLiteral value: String) {
        sql = value
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    /// Appends another query, renumbering its parameters after ours.
    public mutating func append(_ other: PostgresQuery) {
        sql += Self.renumber(other.sql, offset: binds.count)
        binds += other.binds
    }

    /// Shifts `$n` placeholders by `offset`. Placeholders only come from interpolation, so a scan of
    /// `$<digits>` outside single-quoted literals suffices.
    static func renumber(_ sql: String, offset: Int) -> String {
        guard offset > 0 else { return sql }
        var out = ""
        var chars = Array(sql.unicodeScalars)[...]
        var inQuote = false
        while let c = chars.first {
            chars = chars.dropFirst()
            if c == "'" { inQuote.toggle() }
            if c == "$", !inQuote, let d = chars.first, ("0"..."9").contains(d) {
                var digits = ""
                while let d = chars.first, ("0"..."9").contains(d) {
                    digits.unicodeScalars.append(d)
                    chars = chars.dropFirst()
                }
                out += "$\(Int(digits)! + offset)"
                continue
            }
            out.unicodeScalars.append(c)
        }
        return out
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T) {
            binds.append(PostgresBind(value))
            sql += "$\(binds.count)"
        }

        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T?) {
            binds.append(value.map(PostgresBind.init) ?? PostgresBind(null: T.postgresTypeOID))
            sql += "$\(binds.count)"
        }

        /// Text spliced into the SQL as is: for identifiers and fragments the code itself wrote, never for input.
        public mutating func appendInterpolation(unsafeRaw text: String) {
            sql += text
        }
    }
}

/// One parameter: its type OID and its text form (nil is SQL NULL), or binary bytes for bytea.
public struct PostgresBind: Sendable {
    public let typeOID: UInt32
    public let text: String?
    public let binary: [UInt8]?

    public init<T: PostgresEncodable>(_ value: T) {
        typeOID = T.postgresTypeOID
        if let bytes = value as? [UInt8] {
            text = nil
            binary = bytes
        } else {
            text = value.postgresText
            binary = nil
        }
    }

    public init(null typeOID: UInt32) {
        self.typeOID = typeOID
        text = nil
        binary = nil
    }

    var isNull: Bool { text == nil && binary == nil }
}
