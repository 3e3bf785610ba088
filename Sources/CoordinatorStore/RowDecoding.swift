import PostgresClient

extension PostgresRow {
    /// A text column holding one of an enum's raw values. Any other value is a decode error naming the column and
    /// the value (never a silent fallback to some default state).
    package func decodeEnum<E: RawRepresentable>(_ column: String, as type: E.Type = E.self) throws -> E where E.RawValue == String {
        let text = try decode(column, as: String.self)
        guard let value = E(rawValue: text) else {
            throw PostgresError(kind: .decode, message: "column '\(column)' as \(E.self): '\(text)' is not one of its values")
        }
        return value
    }
}

extension PostgresPool {
    /// One round trip that needs no table: whether the database answers at all (readiness).
    package func ping() throws {
        try query("SELECT 1")
    }
}
