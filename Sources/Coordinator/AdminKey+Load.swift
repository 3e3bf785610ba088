import CoordinatorHTTP
import CoordinatorStore
import Foundation

/// The admin credential of `CoordinatorHTTP` (re-exported here for the executables that check a chosen key).
public typealias AdminKey = CoordinatorHTTP.AdminKey

extension AdminKey {
    /// Uses `explicitKey` when given (refused when shorter than `minimumLength`); otherwise reads
    /// `admin-key.sha256` from the data directory, or generates a key, stores its digest there (mode 0600) and
    /// prints the key once.
    static func load(explicitKey: String?, dataDirectory: String) throws -> AdminKey {
        if let explicitKey, !explicitKey.isEmpty {
            if let problem = problem(with: explicitKey) { throw CoordinatorError.startup(problem) }
            return AdminKey(digest: Secrets.sha256(explicitKey))
        }
        let path = dataDirectory + "/admin-key.sha256"
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
           let digest = Secrets.fromHex(text.trimmingCharacters(in: .whitespacesAndNewlines)), digest.count == 32 {
            return AdminKey(digest: digest)
        }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let key = Secrets.generate(prefix: "faa_")
        let digest = Secrets.sha256(key)
        guard FileManager.default.createFile(atPath: path, contents: Data((Secrets.hex(digest) + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw CoordinatorError.startup("cannot write \(path)")
        }
        let banner = """

            ================================================================
            Generated admin key (shown only this once; its SHA-256 is in \(path)):

                \(key)

            Use it as:  Authorization: Bearer \(key)
            Or set FLEETADAPT_ADMIN_KEY to choose your own key.
            ================================================================

            """
        FileHandle.standardError.write(Data(banner.utf8))
        return AdminKey(digest: digest)
    }
}
