import Foundation
import Testing
import TestSupport
@testable import PostgresClient

/// The embedded cluster is private to the process that started it: other local users cannot connect (no TCP,
/// a 0700 socket directory, SCRAM passwords), and SQL run on it cannot read the starter's environment.
/// The suite runs as root (like CI and the quickstart), so it can act as `nobody` with runuser.
@Suite(.serialized) struct EmbeddedPostgresSecurityTests {
    static func freshDirectory(_ tag: String) -> String {
        "/tmp/fleetadapt-sec-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Runs a program (optionally as `nobody`) with an empty environment; returns its exit status and output.
    static func run(_ argv: [String], asNobody: Bool) throws -> (status: Int32, output: String) {
        try ChildProcess.run(asNobody ? ["/usr/sbin/runuser", "-u", "nobody", "--"] + argv : argv,
                             environment: ["PATH": "/usr/bin:/bin"], directory: "/")
    }

    @Test func anotherLocalUserCannotConnect() throws {
        #expect(geteuid() == 0, "the suite runs as root (it must act as another local user)")
        let dir = Self.freshDirectory("nobody")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pg = EmbeddedPostgres(dataDirectory: dir, port: nil, durable: false, maxConnections: 10)
        let config = try pg.start()
        defer { try? pg.stop() }
        let port = try #require(Int(try String(contentsOfFile: dir + "/fleetadapt.port", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        // psql sits beside the server binaries (pg_ctl may be a symlink into that directory).
        let psql = URL(fileURLWithPath: try EmbeddedPostgres.binaryDirectory() + "/pg_ctl").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("psql").path

        // Positive controls: nobody can run psql, and the owner's configuration (with the password) connects.
        let version = try Self.run([psql, "--version"], asNobody: true)
        #expect(version.status == 0, "\(psql): \(version.output)")
        #expect(try PostgresConnection.connect(config).query("SELECT 1 AS one").rows[0].decode("one", as: Int.self) == 1)

        // Over the Unix socket: the directory is closed to other users.
        let socket = try Self.run([psql, "-w", "-h", dir, "-p", String(port), "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"],
                                  asNobody: true)
        #expect(socket.status != 0, "nobody connected over the socket: \(socket.output)")
        // Over TCP: nothing listens.
        let tcp = try Self.run([psql, "-w", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"],
                               asNobody: true)
        #expect(tcp.status != 0, "nobody connected over TCP: \(tcp.output)")
        #expect(tcp.output.contains("refused") || tcp.output.contains("could not connect"), "\(tcp.output)")

        // The directory, the password file and the access rules.
        var info = stat()
        #expect(stat(dir, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(stat(dir + "/fleetadapt.password", &info) == 0 && info.st_mode & 0o777 == 0o600)
        let hba = try String(contentsOfFile: dir + "/pg_hba.conf", encoding: .utf8)
        #expect(!hba.split(separator: "\n").contains { !$0.hasPrefix("#") && $0.contains("trust") })

        // Even root, over the socket, needs the password.
        let noPassword = PostgresConfiguration(socketDirectory: dir, port: port, user: "postgres", database: "postgres")
        #expect(throws: PostgresError.self) { _ = try PostgresConnection.connect(noPassword) }
        let wrong = PostgresConfiguration(socketDirectory: dir, port: port, user: "postgres", password: "wrong", database: "postgres")
        #expect(throws: PostgresError.self) { _ = try PostgresConnection.connect(wrong) }
    }

    /// The attack from black-box testing: `COPY … FROM PROGRAM 'env'` as the superuser printed the admin key.
    @Test func databaseProcessesDoNotSeeTheStartersEnvironment() throws {
        let canary = "canary-\(UUID().uuidString)"
        setenv("FLEETADAPT_SECURITY_TEST_CANARY", canary, 1)
        defer { unsetenv("FLEETADAPT_SECURITY_TEST_CANARY") }
        let dir = Self.freshDirectory("env")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pg = EmbeddedPostgres(dataDirectory: dir, port: nil, durable: false, maxConnections: 10)
        let config = try pg.start()
        defer { try? pg.stop() }
        let c = try PostgresConnection.connect(config)
        try c.simpleQuery("CREATE TEMP TABLE seen (line text); COPY seen FROM PROGRAM 'env'")
        let lines = try c.query("SELECT line FROM seen").rows.map { try $0.decode("line", as: String.self) }
        #expect(!lines.isEmpty)
        #expect(!lines.contains { $0.contains(canary) || $0.hasPrefix("FLEETADAPT") })
        // The postmaster's own environment, read from /proc, agrees.
        let pid = try #require(pg.postmasterPID)
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        #expect(!String(decoding: environ, as: UTF8.self).contains(canary))
    }

    /// A cluster an older version created with trust authentication is moved to SCRAM on its next start.
    @Test func trustClusterOfAnOlderVersionGetsAPassword() throws {
        let dir = Self.freshDirectory("legacy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bin = try EmbeddedPostgres.binaryDirectory()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let owner = try EmbeddedPostgres.serverUser() { _ = chown(dir, owner.uid, owner.gid) }
        let initdb = try Self.run([bin + "/initdb", "-D", dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale"],
                                  asNobody: false, as: try EmbeddedPostgres.serverUser()?.name)
        try #require(initdb.status == 0, "\(initdb.output)")

        let pg = EmbeddedPostgres(dataDirectory: dir, port: nil, durable: false, maxConnections: 10)
        let config = try pg.start()
        defer { try? pg.stop() }
        #expect(try PostgresConnection.connect(config).query("SELECT 1 AS one").rows.count == 1)
        #expect(FileManager.default.fileExists(atPath: dir + "/fleetadapt.password"))
        let hba = try String(contentsOfFile: dir + "/pg_hba.conf", encoding: .utf8)
        #expect(!hba.split(separator: "\n").contains { !$0.hasPrefix("#") && $0.contains("trust") })
        let port = try #require(Int(try String(contentsOfFile: dir + "/fleetadapt.port", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        let noPassword = PostgresConfiguration(socketDirectory: dir, port: port, user: "postgres", database: "postgres")
        #expect(throws: PostgresError.self) { _ = try PostgresConnection.connect(noPassword) }
        // And it starts again with the stored password.
        try pg.stop()
        _ = try pg.start()
        #expect(try PostgresConnection.connect(config).query("SELECT 1 AS one").rows.count == 1)
    }
}

extension EmbeddedPostgresSecurityTests {
    /// `run` as a named user (the server user for initdb), or as ourselves.
    static func run(_ argv: [String], asNobody: Bool, as user: String?) throws -> (status: Int32, output: String) {
        guard let user else { return try run(argv, asNobody: asNobody) }
        return try run(["/usr/sbin/runuser", "-u", user, "--"] + argv, asNobody: false)
    }
}
