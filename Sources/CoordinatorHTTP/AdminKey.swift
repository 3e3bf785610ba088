import CoordinatorStore
import Foundation

/// The admin credential. Only its digest is kept: in memory, and on disk when it was generated.
public struct AdminKey: Sendable {
    package let digest: [UInt8]

    package init(digest: [UInt8]) {
        self.digest = digest
    }

    package func matches(_ presented: String) -> Bool {
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
}
