internal import CLibPQ
import Foundation

/// One libpq connection. Not thread-safe by itself: the pool hands it to one thread at a time.
/// `@unchecked Sendable` because it wraps a C handle (PGconn*) whose only users are serialized by the pool; the
/// statement cache beside it is touched only by the same single user.
public final class PostgresConnection: @unchecked Sendable {
    private let conn: OpaquePointer
    /// Statements this session has prepared, by their SQL and parameter types: every query's text comes from code
    /// (values are always parameters), so a few hundred shapes cover the whole coordinator, and running a prepared
    /// one skips the server's parse and analysis on every call after the first.
    private var prepared: [PreparedKey: String] = [:]
    private var preparedCount = 0
    /// Beyond this many, further shapes run unprepared (a bound on the session's memory, never an error).
    static let preparedLimit = 512

    private struct PreparedKey: Hashable {
        let sql: String
        let types: [Oid]
    }

    private init(conn: OpaquePointer) {
        self.conn = conn
    }

    deinit {
        PQfinish(conn)
    }

    /// Opens a connection; sessions run in UTC with ISO dates so text output decodes one way.
    public static func connect(_ config: PostgresConfiguration) throws -> PostgresConnection {
        let pairs = config.allKeywords + [("options", "-c TimeZone=UTC -c DateStyle=ISO -c client_encoding=UTF8")]
        let conn: OpaquePointer? = withCStrings(pairs.map(\.0)) { keys in
            withCStrings(pairs.map(\.1)) { values in
                PQconnectdbParams(keys, values, 1)
            }
        }
        guard let conn else { throw PostgresError(kind: .connection, message: "out of memory opening a connection") }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(conn)
            throw PostgresError(kind: .connection, message: message)
        }
        PostgresNotices.install(on: conn)
        return PostgresConnection(conn: conn)
    }

    public var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK }

    /// Sets a role's password as a SCRAM-SHA-256 verifier computed by libpq (PQencryptPasswordConn), so the
    /// clear password never reaches the server, its statement log or its error messages.
    public func setPassword(role: String, password: String) throws {
        guard let verifier = PQencryptPasswordConn(conn, password, role, "scram-sha-256") else {
            throw PostgresError(kind: .connection, message: "cannot compute a SCRAM verifier: \(String(cString: PQerrorMessage(conn)))")
        }
        defer { PQfreemem(verifier) }
        let text = String(cString: verifier)
        // The verifier holds only [A-Za-z0-9+/=:$-] characters; quoted as a literal all the same.
        try simpleQuery("ALTER ROLE \(Self.quoteIdentifier(role)) PASSWORD '\(text.replacingOccurrences(of: "'", with: "''"))'")
    }

    /// Runs one statement with its parameters (PQexecParams); text results, bytea parameters in binary.
    @discardableResult
    public func query(_ q: PostgresQuery) throws -> PostgresResult {
        do {
            return try run(q)
        } catch let error as PostgresError where error.sqlState == "0A000" && PQtransactionStatus(conn) == PQTRANS_IDLE {
            // A prepared statement whose table changed shape, outside a transaction: it changed nothing, and
            // `run` forgot it, so running it again prepares it afresh.
            return try run(q)
        }
    }

    private func run(_ q: PostgresQuery) throws -> PostgresResult {
        let n = q.binds.count
        let types = q.binds.map { Oid($0.typeOID) }
        let formats = q.binds.map { Int32($0.binary == nil ? 0 : 1) }
        var buffers: [[UInt8]?] = q.binds.map { bind in
            if let b = bind.binary { return b }
            if let t = bind.text { return Array(t.utf8) + [0] }
            return nil
        }
        let lengths = buffers.map { Int32($0.map { $0.count } ?? 0) }
        let name = try preparedStatement(q.sql, types: types)
        let result: OpaquePointer? = withPointers(&buffers) { values in
            if let name { return PQexecPrepared(conn, name, Int32(n), values, lengths, formats, 0) }
            return PQexecParams(conn, q.sql, Int32(n), types, values, lengths, formats, 0)
        }
        do {
            return try consume(result, sql: q.sql)
        } catch let error as PostgresError where error.sqlState == "0A000" && name != nil {
            // "cached plan must not change result type": a table under the statement changed shape. Forget it, so
            // the next call prepares it afresh (in a transaction, which the error aborted, the caller sees it).
            forget(PreparedKey(sql: q.sql, types: types))
            throw error
        }
    }

    /// The name of `sql` prepared on this session (PQprepare on first use), or nil past `preparedLimit`. A statement
    /// the server refuses to prepare throws the server's error, as running it would have.
    private func preparedStatement(_ sql: String, types: [Oid]) throws -> String? {
        let key = PreparedKey(sql: sql, types: types)
        if let name = prepared[key] { return name }
        guard prepared.count < Self.preparedLimit else { return nil }
        preparedCount += 1
        let name = "fa_\(preparedCount)"
        _ = try consume(PQprepare(conn, name, sql, Int32(types.count), types), sql: sql)
        prepared[key] = name
        return name
    }

    private func forget(_ key: PreparedKey) {
        guard let name = prepared.removeValue(forKey: key) else { return }
        // A name is never reused: a later statement gets a fresh one even if this DEALLOCATE does not run (the
        // transaction is aborted); the session's old entry then just lingers until the connection closes.
        _ = try? simpleQuery("DEALLOCATE \(Self.quoteIdentifier(name))")
    }

    /// Runs SQL text that may hold several statements (PQexec), with no parameters.
    /// The one place a plain String is SQL: migrations are files of the repository, never input.
    public func simpleQuery(_ sql: String) throws {
        _ = try consume(PQexec(conn, sql), sql: sql)
    }

    /// COPY rows into a table in text format; identifiers are quoted, values escaped, nil is NULL.
    /// One round trip for any number of rows: the bulk path for fan-out writes.
    public func copyIn(table: String, columns: [String], rows: [[String?]]) throws -> Int {
        let sql = "COPY \(Self.quoteQualified(table)) (\(columns.map(Self.quoteIdentifier).joined(separator: ", "))) FROM STDIN"
        let start = PQexec(conn, sql)
        defer { PQclear(start) }
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            _ = try consume(PQexec(conn, "SELECT 1"), sql: sql) // surfaces a broken connection
            throw error(from: start, sql: sql)
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        func flush() throws {
            guard !buffer.isEmpty else { return }
            let rc = buffer.withUnsafeBufferPointer { p in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { PQputCopyData(conn, $0, Int32(p.count)) }
            }
            guard rc == 1 else { throw connectionError() }
            buffer.removeAll(keepingCapacity: true)
        }
        for row in rows {
            guard row.count == columns.count else {
                PQputCopyEnd(conn, "row has the wrong number of columns")
                _ = PQgetResult(conn).map { PQclear($0) }
                drainResults()
                throw PostgresError(kind: .protocolViolation, message: "COPY row has \(row.count) values for \(columns.count) columns")
            }
            for (i, value) in row.enumerated() {
                if i > 0 { buffer.append(9) }
                guard let value else {
                    buffer.append(contentsOf: [92, 78]) // \N
                    continue
                }
                for b in value.utf8 {
                    switch b {
                    case 92: buffer.append(contentsOf: [92, 92])
                    case 9: buffer.append(contentsOf: [92, 116])
                    case 10: buffer.append(contentsOf: [92, 110])
                    case 13: buffer.append(contentsOf: [92, 114])
                    default: buffer.append(b)
                    }
                }
            }
            buffer.append(10)
            if buffer.count > 1 << 20 { try flush() }
        }
        try flush()
        guard PQputCopyEnd(conn, nil) == 1 else { throw connectionError() }
        let result = try consume(PQgetResult(conn), sql: sql)
        drainResults()
        return result.affectedRows
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func withTransaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try simpleQuery("BEGIN")
        do {
            let value = try body(self)
            try simpleQuery("COMMIT")
            return value
        } catch {
            if isHealthy { try? simpleQuery("ROLLBACK") }
            throw error
        }
    }

    /// Sends LISTEN for a channel (quoted identifier).
    func listen(_ channel: String) throws {
        try simpleQuery("LISTEN \(Self.quoteIdentifier(channel))")
    }

    /// Waits up to `timeout` seconds for notifications; returns those that arrived.
    func waitForNotifications(timeout: Double) throws -> [(channel: String, payload: String)] {
        var out = takeNotifications()
        if !out.isEmpty { return out }
        let fd = PQsocket(conn)
        guard fd >= 0 else { throw connectionError() }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&pfd, 1, Int32(timeout * 1000))
        if rc < 0 && errno != EINTR { throw PostgresError(kind: .connection, message: "poll failed: errno \(errno)") }
        if rc > 0 {
            guard PQconsumeInput(conn) == 1 else { throw connectionError() }
        }
        out = takeNotifications()
        if PQstatus(conn) != CONNECTION_OK { throw connectionError() }
        return out
    }

    private func takeNotifications() -> [(channel: String, payload: String)] {
        var out: [(String, String)] = []
        while let n = PQnotifies(conn) {
            out.append((String(cString: n.pointee.relname), String(cString: n.pointee.extra)))
            PQfreemem(n)
        }
        return out
    }

    private func drainResults() {
        while let r = PQgetResult(conn) { PQclear(r) }
    }

    /// Turns a PGresult into rows or an error, and frees it.
    private func consume(_ result: OpaquePointer?, sql: String) throws -> PostgresResult {
        guard let result else { throw connectionError() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(rows: [], affectedRows: Int(String(cString: PQcmdTuples(result))) ?? 0)
        case PGRES_TUPLES_OK:
            let nrows = Int(PQntuples(result))
            let ncols = Int(PQnfields(result))
            let index = PostgresRow.ColumnIndex(names: (0..<ncols).map { String(cString: PQfname(result, Int32($0))) })
            var rows: [PostgresRow] = []
            rows.reserveCapacity(nrows)
            for r in 0..<nrows {
                var values: [String?] = []
                values.reserveCapacity(ncols)
                for c in 0..<ncols {
                    if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                        values.append(nil)
                    } else {
                        let len = Int(PQgetlength(result, Int32(r), Int32(c)))
                        let ptr = PQgetvalue(result, Int32(r), Int32(c))!
                        values.append(ptr.withMemoryRebound(to: UInt8.self, capacity: len) {
                            String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self)
                        })
                    }
                }
                rows.append(PostgresRow(columnIndex: index, values: values))
            }
            return PostgresResult(rows: rows, affectedRows: Int(String(cString: PQcmdTuples(result))) ?? nrows)
        default:
            throw error(from: result, sql: sql)
        }
    }

    private func error(from result: OpaquePointer?, sql: String) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let result, let p = PQresultErrorField(result, code) else { return nil }
            return String(cString: p)
        }
        let state = field(Int32(UInt8(ascii: "C")))
        if state == nil && PQstatus(conn) != CONNECTION_OK { return connectionError() }
        let message = field(Int32(UInt8(ascii: "M"))) ?? String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
        return PostgresError(kind: state == nil ? .protocolViolation : .server, sqlState: state, message: message,
                             detail: field(Int32(UInt8(ascii: "D"))), constraint: field(Int32(UInt8(ascii: "n"))))
    }

    private func connectionError() -> PostgresError {
        PostgresError(kind: .connection, message: String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func quoteQualified(_ name: String) -> String {
        name.split(separator: ".", omittingEmptySubsequences: false).map { quoteIdentifier(String($0)) }.joined(separator: ".")
    }
}

/// Calls `body` with a NULL-terminated array of C strings that live for the call.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var cStrings = strings.map { strdup($0) }
    defer { cStrings.forEach { free($0) } }
    cStrings.append(nil)
    return cStrings.withUnsafeBufferPointer { buf in
        buf.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buf.count) { body($0) }
    }
}

/// Calls `body` with an array of pointers to each buffer's bytes (nil buffers become NULL).
private func withPointers<R>(_ buffers: inout [[UInt8]?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = buffers.map { buffer in
        guard let buffer else { return nil }
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: max(buffer.count, 1))
        if buffer.isEmpty { return p }
        buffer.withUnsafeBytes { src in
            UnsafeMutableRawPointer(p).copyMemory(from: src.baseAddress!, byteCount: src.count)
        }
        return p
    }
    defer { pointers.forEach { $0?.deallocate() } }
    if pointers.isEmpty { return body(nil) }
    return pointers.withUnsafeBufferPointer { buf in
        buf.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buf.count) { body($0) }
    }
}
