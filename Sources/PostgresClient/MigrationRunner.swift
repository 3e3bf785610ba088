import Foundation

/// Applies `NNNN_name.sql` migrations in order, each in its own transaction, under an advisory lock so that
/// replicas starting together migrate once. Applied files are recorded with their SHA-256; an applied
/// file that changed since stops start-up (add a new migration instead of editing one).
public struct MigrationRunner: Sendable {
    /// Where the migrations come from: a directory of files, or `(name, sql)` pairs compiled into the binary.
    public enum Source: Sendable {
        case directory(String)
        case bundled([MigrationFile])
    }

    public let source: Source
    /// Arbitrary constant naming "the FleetAdapt migration lock".
    static let lockKey: Int64 = 0x0F1E_E7AD_0000_0001

    public init(directory: String) {
        self.source = .directory(directory)
    }

    public init(bundled: [MigrationFile]) {
        self.source = .bundled(bundled)
    }

    /// For start-up logs: the directory, or "compiled in".
    public var sourceDescription: String {
        switch source {
        case .directory(let path): return path
        case .bundled: return "compiled in"
        }
    }

    struct Migration {
        let version: Int
        let name: String
        let sql: String
    }

    func files() throws -> [Migration] {
        let listed: [MigrationFile]
        switch source {
        case .bundled(let files):
            listed = files
        case .directory(let directory):
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: directory)
            } catch {
                throw MigrationError(message: "cannot read the migrations directory \(directory): \(error.localizedDescription)")
            }
            listed = try names.sorted().filter { $0.hasSuffix(".sql") }.map { name in
                guard let sql = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else {
                    throw MigrationError(message: "cannot read migration \(name)")
                }
                return MigrationFile(name: name, sql: sql)
            }
        }
        var out: [Migration] = []
        for file in listed.sorted(by: { $0.name < $1.name }) {
            let name = file.name, sql = file.sql
            guard let underscore = name.firstIndex(of: "_"), let version = Int(name[..<underscore]) else {
                throw MigrationError(message: "migration file \(name) is not named NNNN_name.sql")
            }
            if out.contains(where: { $0.version == version }) {
                throw MigrationError(message: "two migrations share version \(version) (\(name))")
            }
            out.append(Migration(version: version, name: name, sql: sql))
        }
        return out.sorted { $0.version < $1.version }
    }

    /// Applies what is pending; returns the names applied now.
    public func migrate(_ pool: PostgresPool) throws -> [String] {
        let migrations = try files()
        return try pool.withConnection { c in
            try c.query("SELECT pg_advisory_lock(\(Self.lockKey))")
            defer { _ = try? c.query("SELECT pg_advisory_unlock(\(Self.lockKey))") }
            try c.simpleQuery("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let applied = try appliedChecksums(c)
            var done: [String] = []
            for m in migrations {
                let checksum = try self.checksum(m.sql, c)
                if let recorded = applied[m.version] {
                    guard recorded.checksum == checksum else {
                        throw MigrationError(message: "migration \(m.name) was applied with checksum \(recorded.checksum.prefix(12))… but the file now has \(checksum.prefix(12))…: applied migrations must never change; restore the file and add a new migration")
                    }
                    continue
                }
                do {
                    try c.withTransaction { tx in
                        try tx.simpleQuery(m.sql)
                        try tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (\(m.version), \(m.name), \(checksum))")
                    }
                } catch let e as PostgresError {
                    throw MigrationError(message: "migration \(m.name) failed: \(e)")
                }
                done.append(m.name)
            }
            return done
        }
    }

    /// Names of migrations not yet applied (for readiness).
    public func pending(_ pool: PostgresPool) throws -> [String] {
        let migrations = try files()
        let applied = try pool.withConnection { c -> [Int: (name: String, checksum: String)] in
            let exists = try c.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS e").rows[0].decode("e", as: Bool.self)
            return exists ? try appliedChecksums(c) : [:]
        }
        return migrations.filter { applied[$0.version] == nil }.map(\.name)
    }

    private func appliedChecksums(_ c: PostgresConnection) throws -> [Int: (name: String, checksum: String)] {
        var out: [Int: (String, String)] = [:]
        for row in try c.query("SELECT version, name, checksum FROM schema_migrations").rows {
            out[try row.decode("version", as: Int.self)] = (try row.decode("name", as: String.self), try row.decode("checksum", as: String.self))
        }
        return out
    }

    /// SHA-256 computed by the server itself, so this module needs no hashing code.
    private func checksum(_ sql: String, _ c: PostgresConnection) throws -> String {
        try c.query("SELECT encode(sha256(convert_to(\(sql), 'UTF8')), 'hex') AS h").rows[0].decode("h", as: String.self)
    }
}

/// One migration: its file name (`NNNN_name.sql`) and its SQL.
public struct MigrationFile: Sendable, Equatable {
    public let name: String
    public let sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}

public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
