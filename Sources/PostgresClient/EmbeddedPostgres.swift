import Foundation
import Synchronization

/// A private PostgreSQL cluster in a data directory, run with the installed server binaries
/// (initdb / pg_ctl from PATH or /usr/lib/postgresql/*/bin). Started as root, it runs as the unprivileged
/// `postgres` user.
///
/// Nothing else on the machine may reach it: it listens only on a Unix socket in a 0700 directory owned by the
/// server's user (no TCP unless `listensOnTCP`), every connection authenticates with SCRAM-SHA-256 against a
/// generated password kept in the data directory (mode 0600), and the server's processes start with a scrubbed
/// environment, so no secret of the caller (an admin key, a token) is visible to SQL such as
/// `COPY … FROM PROGRAM 'env'`. Reused across starts; a cluster made by an older version with trust
/// authentication is moved to SCRAM on its next start.
public final class EmbeddedPostgres: Sendable {
    public let dataDirectory: String
    let requestedPort: Int?
    /// Test clusters trade durability for speed (fsync off); a coordinator's cluster never does.
    let durable: Bool
    let maxConnections: Int
    /// Also listen on 127.0.0.1 (still password-authenticated); off by default.
    public let listensOnTCP: Bool
    static let superuser = "postgres"
    static let database = "fleetadapt"
    /// The only environment the server's tools and processes get.
    static let serverEnvironment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", "LANG=C"]

    public convenience init(dataDirectory: String, port: Int? = nil, listensOnTCP: Bool = false) {
        self.init(dataDirectory: dataDirectory, port: port, durable: true, maxConnections: 100, listensOnTCP: listensOnTCP)
    }

    init(dataDirectory: String, port: Int?, durable: Bool, maxConnections: Int, listensOnTCP: Bool = false) {
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.requestedPort = port
        self.durable = durable
        self.maxConnections = maxConnections
        self.listensOnTCP = listensOnTCP
    }

    var passwordFile: String { dataDirectory + "/fleetadapt.password" }

    /// Initialises the cluster if needed, starts it (or finds it running) and returns how to reach
    /// the `fleetadapt` database on it.
    public func start() throws -> PostgresConfiguration {
        let bin = try Self.binaryDirectory()
        let fm = FileManager.default
        try fm.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let owner = try Self.serverUser()
        if let owner { try chownRecursively(dataDirectory, uid: owner.uid, gid: owner.gid) }
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dataDirectory)

        var password = readPassword()
        if !fm.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            let fresh = Self.generatePassword()
            try withPasswordFile(fresh, owner: owner) { pwfile in
                try run(bin + "/initdb", ["-D", dataDirectory, "-U", Self.superuser, "--auth=scram-sha-256",
                                          "--pwfile=" + pwfile, "-E", "UTF8", "--no-locale"]
                        + (durable ? [] : ["--no-sync"]), as: owner, what: "initdb")
            }
            try storePassword(fresh, owner: owner)
            password = fresh
        }
        let port = try resolvePort()
        let socketDirectory = try self.socketDirectory(owner: owner)
        if !(try isRunning()) {
            // A cluster from an older version may still trust local connections: keep its hba until the
            // password is set below, then write ours.
            if password != nil { try writeAccessRules(owner: owner) }
            var options = "-k \(socketDirectory) -c unix_socket_permissions=0700 -p \(port) -c max_connections=\(maxConnections)"
            options += listensOnTCP ? " -c listen_addresses=127.0.0.1" : " -c listen_addresses=''"
            if !durable { options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" }
            try run(bin + "/pg_ctl", ["-D", dataDirectory, "-l", dataDirectory + "/server.log", "-w", "-t", "60", "-o", options, "start"],
                    as: owner, what: "pg_ctl start")
        }
        var config = PostgresConfiguration(socketDirectory: socketDirectory, port: port, user: Self.superuser,
                                           password: password, database: "postgres")
        if password == nil {
            // Trust-authenticated cluster of an older version: give the superuser a password (sent as a SCRAM
            // verifier, never in clear), then require it from every connection.
            let fresh = Self.generatePassword()
            let legacy = try PostgresConnection.connect(config)
            try legacy.setPassword(role: Self.superuser, password: fresh)
            try storePassword(fresh, owner: owner)
            try writeAccessRules(owner: owner)
            try legacy.query("SELECT pg_reload_conf()")
            password = fresh
            config = PostgresConfiguration(socketDirectory: socketDirectory, port: port, user: Self.superuser,
                                           password: fresh, database: "postgres")
        }
        let admin = try PostgresConnection.connect(config)
        if try admin.query("SELECT 1 FROM pg_database WHERE datname = \(Self.database)").rows.isEmpty {
            try admin.simpleQuery("CREATE DATABASE \(PostgresConnection.quoteIdentifier(Self.database))")
        }
        return config.withDatabase(Self.database)
    }

    /// Stops the server (fast shutdown: sessions are disconnected, committed work is safe).
    public func stop() throws {
        guard FileManager.default.fileExists(atPath: dataDirectory + "/postmaster.pid") else { return }
        try run(try Self.binaryDirectory() + "/pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "-t", "60", "stop"],
                as: try Self.serverUser(), what: "pg_ctl stop")
    }

    /// Whether the cluster's postmaster is alive (the pid in `postmaster.pid` exists). A stale file left by a
    /// killed server names a dead process (or, rarely, a reused pid: `pg_ctl start` then tells).
    public func isRunning() throws -> Bool {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first, let pid = pid_t(first.trimmingCharacters(in: .whitespaces)),
              pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// The postmaster's process id while it runs (for supervision and tests).
    public var postmasterPID: pid_t? {
        guard (try? isRunning()) == true,
              let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first else { return nil }
        return pid_t(first.trimmingCharacters(in: .whitespaces))
    }

    /// Creates a database on the running cluster (named by the caller's code, not by input); its configuration
    /// waits up to 30 s for a connection (clusters this creates databases on are local and may be busy).
    public func createDatabase(_ name: String) throws -> PostgresConfiguration {
        let port = try resolvePort()
        var config = PostgresConfiguration(socketDirectory: try socketDirectory(owner: try Self.serverUser()), port: port,
                                           user: Self.superuser, password: readPassword(), database: "postgres")
        config.connectTimeoutSeconds = 30
        let admin = try PostgresConnection.connect(config)
        try admin.simpleQuery("CREATE DATABASE \(PostgresConnection.quoteIdentifier(name))")
        return config.withDatabase(name)
    }

    // MARK: - Credentials and access rules

    /// 32 bytes from the system CSPRNG, hex: the superuser's password, stored only in the data directory.
    static func generatePassword() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &rng)) }.joined()
    }

    private func readPassword() -> String? {
        guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else { return nil }
        let password = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return password.isEmpty ? nil : password
    }

    private func storePassword(_ password: String, owner: ServerUser?) throws {
        try writePrivateFile(passwordFile, password + "\n", owner: owner)
    }

    /// Every connection, local or (when enabled) loopback TCP, authenticates with SCRAM; nothing is trusted.
    private func writeAccessRules(owner: ServerUser?) throws {
        let rules = """
            # Written by FleetAdapt at every start: every connection authenticates with the cluster's password.
            local all all scram-sha-256
            host  all all 127.0.0.1/32 scram-sha-256
            host  all all ::1/128 scram-sha-256

            """
        try writePrivateFile(dataDirectory + "/pg_hba.conf", rules, owner: owner)
    }

    /// Writes a 0600 file owned by the server user (created with that mode, never world-readable in between).
    private func writePrivateFile(_ path: String, _ text: String, owner: ServerUser?) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PostgresError(kind: .connection, message: "cannot write \(temporary): errno \(errno)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else {
            unlink(temporary)
            throw PostgresError(kind: .connection, message: "cannot write \(temporary)")
        }
        if let owner { _ = chown(temporary, owner.uid, owner.gid) }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw PostgresError(kind: .connection, message: "cannot replace \(path): errno \(errno)")
        }
    }

    /// initdb reads the first password from a file: one in a fresh 0700 directory of the server user, removed after.
    private func withPasswordFile(_ password: String, owner: ServerUser?, _ body: (String) throws -> Void) throws {
        var template = Array("/tmp/fleetadapt-pw-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            throw PostgresError(kind: .connection, message: "cannot create a private directory for initdb: errno \(errno)")
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        if let owner { _ = chown(dir, owner.uid, owner.gid) }
        let file = dir + "/pwfile"
        try writePrivateFile(file, password + "\n", owner: owner)
        try body(file)
    }

    // MARK: - Binaries and users

    static func binaryDirectory() throws -> String {
        let fm = FileManager.default
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        where fm.isExecutableFile(atPath: dir + "/pg_ctl") && fm.isExecutableFile(atPath: dir + "/initdb") {
            return dir
        }
        let versions = ((try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted()
        for v in versions.reversed() where fm.isExecutableFile(atPath: "/usr/lib/postgresql/\(v)/bin/pg_ctl") {
            return "/usr/lib/postgresql/\(v)/bin"
        }
        throw PostgresError(kind: .connection, message: "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin; install Debian's `postgresql` package (apt-get install postgresql) or set DATABASE_URL")
    }

    struct ServerUser { let name: String; let uid: uid_t; let gid: gid_t }

    /// PostgreSQL refuses to run as root; then the cluster belongs to the `postgres` user.
    static func serverUser() throws -> ServerUser? {
        guard geteuid() == 0 else { return nil }
        guard let pw = getpwnam("postgres") else {
            throw PostgresError(kind: .connection, message: "running as root, the embedded PostgreSQL needs the unprivileged `postgres` user (created by Debian's `postgresql` package)")
        }
        return ServerUser(name: "postgres", uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid)
    }

    private func chownRecursively(_ path: String, uid: uid_t, gid: gid_t) throws {
        guard chown(path, uid, gid) == 0 else {
            throw PostgresError(kind: .connection, message: "cannot hand \(path) to the postgres user: errno \(errno)")
        }
        // Only the top directory is ours to fix; files below were created by the server user already.
    }

    /// The socket lives in the data directory (0700, the server user's) or, when that path is too long for a
    /// Unix socket (~107 bytes), in a /tmp directory of its own that must be a real directory owned by the server
    /// user and is made 0700: a directory another local user created in advance is refused, not used.
    private func socketDirectory(owner: ServerUser?) throws -> String {
        if dataDirectory.utf8.count + 20 < 100 { return dataDirectory }
        var hash: UInt64 = 1469598103934665603
        for b in dataDirectory.utf8 { hash = (hash ^ UInt64(b)) &* 1099511628211 }
        let dir = "/tmp/fleetadapt-pg-" + String(hash, radix: 36)
        if mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw PostgresError(kind: .connection, message: "cannot create the socket directory \(dir): errno \(errno)")
        }
        if let owner { _ = chown(dir, owner.uid, owner.gid) }
        var info = stat()
        let expected = owner?.uid ?? geteuid()
        guard lstat(dir, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == expected else {
            throw PostgresError(kind: .connection, message: "the socket directory \(dir) exists but is not a directory owned by the server's user; remove it")
        }
        guard chmod(dir, 0o700) == 0 else {
            throw PostgresError(kind: .connection, message: "cannot make \(dir) private: errno \(errno)")
        }
        return dir
    }

    /// The port is chosen once (free on loopback) and remembered next to the cluster.
    private func resolvePort() throws -> Int {
        let file = dataDirectory + "/fleetadapt.port"
        if let requestedPort {
            try? String(requestedPort).write(toFile: file, atomically: true, encoding: .utf8)
            return requestedPort
        }
        if let text = try? String(contentsOfFile: file, encoding: .utf8), let p = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            return p
        }
        let p = try Self.freeLoopbackPort()
        try String(p).write(toFile: file, atomically: true, encoding: .utf8)
        return p
    }

    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw PostgresError(kind: .connection, message: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Bool in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard bound else { throw PostgresError(kind: .connection, message: "cannot find a free loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Runs a server tool (as the server user when we are root), its output into a log file, not a pipe:
    /// the server started by pg_ctl inherits descriptors and would hold a pipe open forever.
    /// posix_spawn + waitpid rather than Foundation's Process, whose run-loop wait can miss the exit.
    private func run(_ tool: String, _ arguments: [String], as user: ServerUser?, what: String) throws {
        let logPath = NSTemporaryDirectory() + "fleetadapt-\(what.replacingOccurrences(of: " ", with: "-"))-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        // From `/`: the server user may not be allowed into our working directory, and initdb needs one it can read.
        let inRoot = ["/bin/sh", "-c", "cd / && exec \"$@\"", "sh"]
        let argv = inRoot + (user.map { ["/usr/sbin/runuser", "-u", $0.name, "--", tool] } ?? [tool])
        let status = try spawnAndWait(argv + arguments, logPath: logPath, environment: Self.serverEnvironment)
        guard status == 0 else {
            let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            var message = "\(what) failed (exit \(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
            if let serverLog = try? String(contentsOfFile: dataDirectory + "/server.log", encoding: .utf8) {
                message += "\nserver.log (last lines):\n" + serverLog.split(separator: "\n").suffix(10).joined(separator: "\n")
            }
            throw PostgresError(kind: .connection, message: message)
        }
    }
}

/// Starts `argv[0]` with only `environment`, stdin from /dev/null and stdout/stderr appended to `logPath`; returns its exit status.
func spawnAndWait(_ argv: [String], logPath: String, environment: [String]) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
    cArgs.append(nil)
    defer { cArgs.forEach { free($0) } }
    var pid: pid_t = 0
    // A scrubbed environment: the server and its tools never see the caller's variables (secrets included).
    var cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) }
    cEnv.append(nil)
    defer { cEnv.forEach { free($0) } }
    let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
    guard rc == 0 else {
        throw PostgresError(kind: .connection, message: "cannot run \(argv[0]): \(String(cString: strerror(rc)))")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw PostgresError(kind: .connection, message: "waitpid failed: errno \(errno)") }
    }
    // WIFEXITED / WEXITSTATUS are macros Swift cannot import.
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

// MARK: - One cluster per test process

/// The test cluster of this process, started on first use and stopped (and deleted) at exit.
private let testCluster = Mutex<(cluster: EmbeddedPostgres, databases: Int)?>(nil)

extension EmbeddedPostgres {
    /// A fresh, uniquely named database on this process's test cluster, so parallel tests never share state.
    public static func sharedForTests() throws -> PostgresConfiguration {
        let (cluster, n) = try testCluster.withLock { state -> (EmbeddedPostgres, Int) in
            if state == nil {
                let dir = "/tmp/fleetadapt-test-pg-\(getpid())"
                try? FileManager.default.removeItem(atPath: dir)
                let cluster = EmbeddedPostgres(dataDirectory: dir, port: nil, durable: false, maxConnections: 400)
                _ = try cluster.start()
                state = (cluster, 0)
                atexit {
                    let cluster = testCluster.withLock { $0?.cluster }
                    guard let cluster else { return }
                    try? cluster.stop()
                    try? FileManager.default.removeItem(atPath: cluster.dataDirectory)
                }
            }
            state!.databases += 1
            return (state!.cluster, state!.databases)
        }
        // createDatabase's configuration waits up to 30 s for a connection: the suite trains networks on every core
        // while dozens of coordinators connect, and a backend answering later than the production 5 s is load,
        // not failure.
        return try cluster.createDatabase("test_\(n)")
    }
}
