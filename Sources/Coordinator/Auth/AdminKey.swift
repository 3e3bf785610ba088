import Foundation

/// The admin credential. Only its digest is kept: in memory, and on disk when it was generated.
struct AdminKey: Sendable {
    let digest: [UInt8]

    func matches(_ presented: String) -> Bool {
        Secrets.constantTimeEqual(Secrets.sha256(presented), digest)
    }

    /// Uses `explicitKey` when given; otherwise reads `admin-key.sha256` from the data directory,
    /// or generates a key, stores its digest there (mode 0600) and prints the key once.
    static func load(explicitKey: String?, dataDirectory: String) throws -> AdminKey {
        if let explicitKey, !explicitKey.isEmpty {
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
