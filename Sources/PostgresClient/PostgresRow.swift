/// One result row, copied out of libpq so it outlives the PGresult. Values are PostgreSQL's text output.
public struct PostgresRow: Sendable {
    let columnIndex: ColumnIndex
    let values: [String?]

    /// Column names shared by every row of a result.
    final class ColumnIndex: Sendable {
        let names: [String]
        let positions: [String: Int]

        init(names: [String]) {
            self.names = names
            var positions: [String: Int] = [:]
            for (i, n) in names.enumerated() where positions[n] == nil { positions[n] = i }
            self.positions = positions
        }
    }

    public var columns: [String] { columnIndex.names }

    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        let index = try position(column)
        guard let text = values[index] else {
            throw decodeError(column, index, T.self, "is NULL; decode as \(T.self)? to allow it")
        }
        return try decodeValue(text, column, index, T.self)
    }

    public func decode<T: PostgresDecodable>(_ column: String, as type: T?.Type) throws -> T? {
        let index = try position(column)
        guard let text = values[index] else { return nil }
        return try decodeValue(text, column, index, T.self)
    }

    public func decode<T: PostgresDecodable>(_ index: Int, as type: T.Type) throws -> T {
        guard values.indices.contains(index) else {
            throw PostgresError(kind: .decode, message: "no column at index \(index) (row has \(values.count))")
        }
        let name = columnIndex.names[index]
        guard let text = values[index] else { throw decodeError(name, index, T.self, "is NULL") }
        return try decodeValue(text, name, index, T.self)
    }

    public func isNull(_ column: String) throws -> Bool { values[try position(column)] == nil }

    private func position(_ column: String) throws -> Int {
        guard let i = columnIndex.positions[column] else {
            throw PostgresError(kind: .decode, message: "no column '\(column)' in the result (columns: \(columnIndex.names.joined(separator: ", ")))")
        }
        return i
    }

    private func decodeValue<T: PostgresDecodable>(_ text: String, _ column: String, _ index: Int, _ type: T.Type) throws -> T {
        do {
            return try T(postgresText: text)
        } catch let e as PostgresValueError {
            throw decodeError(column, index, T.self, e.reason)
        }
    }

    private func decodeError<T>(_ column: String, _ index: Int, _ type: T.Type, _ reason: String) -> PostgresError {
        PostgresError(kind: .decode, message: "column '\(column)' (index \(index)) as \(T.self): \(reason)")
    }
}

/// Rows and the number of rows a command changed.
public struct PostgresResult: Sendable {
    public var rows: [PostgresRow]
    public var affectedRows: Int
}
