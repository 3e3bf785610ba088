import Foundation
import Synchronization
import Testing
@testable import PostgresClient

@Suite struct PostgresQueryTests {
    @Test func interpolationsBecomeParameters() {
        let name = "x'; DROP TABLE t; --"
        let q: PostgresQuery = "SELECT * FROM t WHERE name = \(name) AND n > \(3) AND id = ANY(\(PostgresArray([1, 2])))"
        #expect(q.sql == "SELECT * FROM t WHERE name = $1 AND n > $2 AND id = ANY($3)")
        #expect(q.binds.count == 3)
        #expect(q.binds[0].text == name)
        #expect(q.binds[2].text == "{\"1\",\"2\"}")
    }

    @Test func appendRenumbers() {
        var q: PostgresQuery = "SELECT 1 WHERE a = \(1)"
        q.append(" AND b = \(2) AND c = '$1' AND d = \(3)")
        #expect(q.sql == "SELECT 1 WHERE a = $1 AND b = $2 AND c = '$1' AND d = $3")
        #expect(q.binds.map(\.text) == ["1", "2", "3"])
    }

    @Test func arrayLiteralRoundTripsNastyStrings() throws {
        let items = ["plain", "with,comma", "with \"quote\"", "back\\slash", "NULL", "", "{braces}", "ünïcødé"]
        let parsed = try PostgresArrayLiteral.parse(PostgresArrayLiteral.format(items))
        #expect(parsed == items)
        #expect(try PostgresArrayLiteral.parse("{a,NULL,\"NULL\"}") == ["a", nil, "NULL"])
    }

    @Test func timestampFormatAndParseAgree() {
        for micros: Int64 in [0, 1, -1, 1_700_000_000_123_456, -86_400_000_001] {
            #expect(PostgresTimestamp.parse(PostgresTimestamp.format(micros: micros)) == micros)
        }
        // Reference value from Python: datetime(2026, 11, 23, 3, 4, 50, 500000, tz=UTC+1).timestamp()
        #expect(PostgresTimestamp.parse("2026-11-23 03:04:50.5+01") == 1_795_399_490_500_000)
        #expect(PostgresTimestamp.parse("garbage") == nil)
    }
}

/// Against a real server: the test cluster started by `EmbeddedPostgres.sharedForTests()`.
@Suite struct PostgresServerTests {
    let pool: PostgresPool
    init() throws { pool = PostgresPool(configuration: try EmbeddedPostgres.sharedForTests(), maxConnections: 4) }

    /// Statements are prepared once per connection; one whose table changed shape is prepared again and answers.
    @Test func aPreparedStatementFollowsItsTableChangingShape() throws {
        let table = "shape_" + UUID().uuidString.prefix(8).lowercased()
        try pool.withConnection { c in
            try c.query("CREATE TABLE \(unsafeRaw: table) (a int)")
            try c.query("INSERT INTO \(unsafeRaw: table) VALUES (\(1))")
            let select: PostgresQuery = "SELECT * FROM \(unsafeRaw: table) WHERE a = \(1)"
            #expect(try c.query(select).rows.count == 1)
            #expect(try c.query(select).rows.count == 1)
            try c.query("ALTER TABLE \(unsafeRaw: table) ADD COLUMN b int DEFAULT 7")
            let row = try #require(try c.query(select).rows.first)
            #expect(try row.decode("b", as: Int.self) == 7)
            // In a transaction the server's refusal reaches the caller once; the statement is prepared again after.
            try c.query("ALTER TABLE \(unsafeRaw: table) ADD COLUMN d int DEFAULT 8")
            #expect(throws: PostgresError.self) { try c.withTransaction { try $0.query(select) } }
            #expect(try c.withTransaction { try $0.query(select) }.rows.first?.decode("d", as: Int.self) == 8)
        }
    }

    @Test func injectionIsStoredVerbatim() throws {
        try pool.query("CREATE TABLE victims (name text)")
        let evil = "'); DROP TABLE victims; --"
        try pool.query("INSERT INTO victims (name) VALUES (\(evil))")
        let rows = try pool.query("SELECT name FROM victims").rows
        #expect(try rows.map { try $0.decode("name", as: String.self) } == [evil])
    }

    @Test func everyTypeRoundTrips() throws {
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let bytes = (0...255).map(UInt8.init)
        let strings = ["a", "b,c", "d\"e", "f\\g", "NULL", "", "ü"]
        let row = try pool.query("""
            SELECT \(42) AS i, \(Int64.max) AS big, \(Int32(-7)) AS small, \(3.25) AS d, \(Float(1.5)) AS f, \(true) AS b,
                   \(id) AS u, \(date) AS t, \(bytes) AS bytes, \("héllo 🌍") AS s, \(Optional<String>.none) AS n,
                   \(PostgresArray(strings)) AS sa, \(PostgresArray([id, id])) AS ua, \(PostgresArray([1.5, -2.0])) AS da,
                   \(PostgresJSONB(json: #"{"k": [1, 2]}"#))->'k'->>1 AS j
            """).rows[0]
        #expect(try row.decode("i", as: Int.self) == 42)
        #expect(try row.decode("big", as: Int64.self) == Int64.max)
        #expect(try row.decode("small", as: Int32.self) == -7)
        #expect(try row.decode("d", as: Double.self) == 3.25)
        #expect(try row.decode("f", as: Float.self) == 1.5)
        #expect(try row.decode("b", as: Bool.self))
        #expect(try row.decode("u", as: UUID.self) == id)
        #expect(try row.decode("t", as: Date.self) == date)
        #expect(try row.decode("bytes", as: [UInt8].self) == bytes)
        #expect(try row.decode("s", as: String.self) == "héllo 🌍")
        #expect(try row.decode("n", as: String?.self) == nil)
        #expect(try row.decode("sa", as: [String].self) == strings)
        #expect(try row.decode("ua", as: [UUID].self) == [id, id])
        #expect(try row.decode("da", as: [Double].self) == [1.5, -2.0])
        #expect(try row.decode("j", as: String.self) == "2")
    }

    @Test func decodeErrorsNameColumnAndType() throws {
        let row = try pool.query("SELECT 'abc'::text AS word, NULL::int AS nothing").rows[0]
        do {
            _ = try row.decode("word", as: Int.self)
            Issue.record("decoded text as Int")
        } catch let e as PostgresError {
            #expect(e.kind == .decode)
            #expect(e.message.contains("'word'") && e.message.contains("Int") && e.message.contains("index 0"))
        }
        #expect(throws: PostgresError.self) { try row.decode("nothing", as: Int.self) }
        #expect(try row.decode("nothing", as: Int?.self) == nil)
        #expect(throws: PostgresError.self) { try row.decode("missing", as: Int.self) }
    }

    @Test func serverErrorsKeepSQLSTATE() throws {
        try pool.query("CREATE TABLE uniq (k int PRIMARY KEY)")
        try pool.query("INSERT INTO uniq VALUES (\(1))")
        do {
            try pool.query("INSERT INTO uniq VALUES (\(1))")
            Issue.record("duplicate accepted")
        } catch let e as PostgresError {
            #expect(e.isUniqueViolation)
            #expect(e.sqlState == "23505")
            #expect(e.constraint == "uniq_pkey")
            #expect(!e.isConnectionFailure)
        }
        #expect(throws: PostgresError.self) { try pool.query("SELEKT 1") }
    }

    @Test func transactionRollsBackOnThrow() throws {
        struct Boom: Error {}
        try pool.query("CREATE TABLE tx (v int)")
        #expect(throws: Boom.self) {
            _ = try pool.withTransaction { c -> Int in
                try c.query("INSERT INTO tx VALUES (\(1))")
                throw Boom()
            }
        }
        _ = try pool.withTransaction { c in try c.query("INSERT INTO tx VALUES (\(2))") }
        let values = try pool.query("SELECT v FROM tx").rows.map { try $0.decode("v", as: Int.self) }
        #expect(values == [2])
    }

    @Test func copyRoundTripsTenThousandNastyRows() throws {
        try pool.query("CREATE TABLE copied (i int, s text, n text)")
        let nasty = ["tab\there", "new\nline", "back\\slash", "\\N", "cr\rlf", "ünï", ""]
        let rows: [[String?]] = (0..<10_000).map { i in [String(i), nasty[i % nasty.count] + String(i), i % 3 == 0 ? nil : "x"] }
        let n = try pool.withConnection { try $0.copyIn(table: "copied", columns: ["i", "s", "n"], rows: rows) }
        #expect(n == 10_000)
        let back = try pool.query("SELECT i, s, n FROM copied ORDER BY i").rows
        #expect(back.count == 10_000)
        for (row, expected) in zip(back, rows) {
            #expect(try row.decode("s", as: String.self) == expected[1])
            #expect(try row.decode("n", as: String?.self) == expected[2])
        }
    }

    @Test func listenerReceivesNotifications() throws {
        let received = Mutex2<[String]>([])
        let listener = try PostgresListener(configuration: pool.configuration, channels: ["test_chan"]) { channel, payload in
            received.mutate { $0.append("\(channel):\(payload)") }
        }
        defer { listener.stop() }
        try pool.query("SELECT pg_notify('test_chan', \("hello"))")
        let deadline = Date().addingTimeInterval(60)  // an upper bound: the suite may share the cores with training
        while received.value.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(received.value == ["test_chan:hello"])
    }

    @Test func poolServesManyThreads() throws {
        let errors = Mutex2<Int>(0)
        let total = Mutex2<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 16) { t in
            for i in 0..<50 {
                do {
                    let v = try pool.query("SELECT \(t * 1000 + i) + 0 AS v").rows[0].decode("v", as: Int.self)
                    if v == t * 1000 + i { total.mutate { $0 += 1 } }
                } catch {
                    errors.mutate { $0 += 1 }
                }
            }
        }
        #expect(errors.value == 0)
        #expect(total.value == 800)
    }
}

@Suite struct MigrationRunnerTests {
    func directory(_ files: [String: String]) throws -> String {
        let dir = NSTemporaryDirectory() + "migrations-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, sql) in files { try sql.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    @Test func appliesOnceAndRefusesEditedFiles() throws {
        let pool = PostgresPool(configuration: try EmbeddedPostgres.sharedForTests(), maxConnections: 4)
        let dir = try directory(["0001_a.sql": "CREATE TABLE a (x int);", "0002_b.sql": "CREATE TABLE b (y int); INSERT INTO b VALUES (1);"])
        let runner = MigrationRunner(directory: dir)
        #expect(try runner.pending(pool) == ["0001_a.sql", "0002_b.sql"])
        // Two replicas at once: the advisory lock makes one apply and the other see nothing to do.
        let applied = Mutex2<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            if let names = try? runner.migrate(pool) { applied.mutate { $0 += names } }
        }
        #expect(applied.value.sorted() == ["0001_a.sql", "0002_b.sql"])
        #expect(try runner.migrate(pool) == [])
        #expect(try runner.pending(pool) == [])
        #expect(try pool.query("SELECT count(*)::bigint AS n FROM b").rows[0].decode("n", as: Int.self) == 1)

        try "CREATE TABLE b (y int, z int);".write(toFile: dir + "/0002_b.sql", atomically: true, encoding: .utf8)
        do {
            _ = try runner.migrate(pool)
            Issue.record("edited migration accepted")
        } catch let e as MigrationError {
            #expect(e.message.contains("0002_b.sql"))
        }
    }

    @Test func aFailingMigrationLeavesNothingBehind() throws {
        let pool = PostgresPool(configuration: try EmbeddedPostgres.sharedForTests(), maxConnections: 2)
        let dir = try directory(["0001_ok.sql": "CREATE TABLE ok (x int);", "0002_bad.sql": "CREATE TABLE half (x int); SELEKT;"])
        #expect(throws: MigrationError.self) { try MigrationRunner(directory: dir).migrate(pool) }
        #expect(try pool.query("SELECT to_regclass('half') IS NULL AS gone").rows[0].decode("gone", as: Bool.self))
        #expect(try MigrationRunner(directory: dir).pending(pool) == ["0002_bad.sql"])
    }
}

@Suite struct EmbeddedPostgresRestartTests {
    /// A request caught by a server restart fails as a connection failure; the next one succeeds.
    @Test func poolRecoversAfterServerRestart() throws {
        let dir = "/tmp/fleetadapt-restart-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pg = EmbeddedPostgres(dataDirectory: dir, port: nil, durable: false, maxConnections: 20)
        let config = try pg.start()
        defer { try? pg.stop() }
        let pool = PostgresPool(configuration: config, maxConnections: 2)
        #expect(try pool.query("SELECT 1 AS one").rows[0].decode("one", as: Int.self) == 1)
        try pg.stop()
        do {
            try pool.query("SELECT 1")
            Issue.record("query succeeded with the server down")
        } catch let e as PostgresError {
            #expect(e.isConnectionFailure)
        }
        _ = try pg.start()
        // The broken connection was dropped; at most one more attempt may still see it.
        var answered = false
        for _ in 0..<2 where !answered { answered = (try? pool.query("SELECT 1")) != nil }
        #expect(answered)
        // Reused cluster: the data survives a restart.
        try pool.query("CREATE TABLE kept (x int)")
        try pg.stop()
        _ = try pg.start()
        var kept: Bool?
        for _ in 0..<2 where kept == nil {
            kept = try? pool.query("SELECT to_regclass('kept') IS NOT NULL AS k").rows[0].decode("k", as: Bool.self)
        }
        #expect(kept == true)
    }
}

/// A tiny lock box for test bookkeeping across threads.
final class Mutex2<T: Sendable>: Sendable {
    private let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    var value: T { m.withLock { $0 } }
    func mutate(_ f: (inout sending T) -> Void) { m.withLock { f(&$0) } }
}
