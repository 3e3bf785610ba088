import Foundation

/// The admin credential. Only its digest is kept: in memory, and on disk when it was generated.
public struct AdminKey: Sendable {
    let digest: [UInt8]

    func matches(_ presented: String) -> Bool {
        Secrets.constantTimeEqual(Secrets.sha256(presented), digest)
    }

    /// A chosen key shorter than this is refused at start: guessing must be hopeless even without the rate limit.
    public static let minimumLength = 32

    /// Why `key` cannot be the admin key, or nil when it can.
    public static func problem(with key: String) -> String? {
        guard key.count < minimumLength else { return nil }
        return "FLEETADAPT_ADMIN_KEY must be at least \(minimumLength) characters long (it has \(key.count)); "
            + "choose a long random one, e.g. `openssl rand -base64 32`, or unset it to have one generated."
    }

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
