import FleetAPI
import FleetClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A device without a token enrols itself once (`POST /v1/agent/enrol` with an enrolment token) and keeps the
/// token it receives in its state directory (`device-token`, mode 0600); later starts read it from there.
public enum AgentEnrolment {
    public static let tokenFileName = "device-token"

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Where the enrolled token is kept for `stateDirectory`.
    public static func tokenPath(stateDirectory: String) -> String {
        URL(fileURLWithPath: stateDirectory).appendingPathComponent(tokenFileName).path
    }

    /// The token stored by an earlier enrolment, if any.
    public static func storedToken(stateDirectory: String) -> String? {
        guard let text = try? String(contentsOfFile: tokenPath(stateDirectory: stateDirectory), encoding: .utf8) else { return nil }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }

    /// The stored token, or a fresh one from enrolling with the token in `enrolTokenFile` (stored before it is
    /// returned). The coordinator is retried until it answers; a refusal throws.
    public static func token(stateDirectory: String, enrolTokenFile: String, coordinatorURL: String, tls: ClientTLS,
                             registration: DeviceRegistration, maxRetryDelay: Double,
                             log: @escaping @Sendable (String) -> Void) throws -> String {
        if let stored = storedToken(stateDirectory: stateDirectory) { return stored }
        let enrolToken = try String(contentsOfFile: enrolTokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !enrolToken.isEmpty else { throw Failure(description: "--enrol-token-file \(enrolTokenFile) is empty") }
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let client = CoordinatorClient(baseURL: coordinatorURL, token: enrolToken, tls: tls)
        let created = try client.enrol(registration, retry: .untilAnswered(maxDelay: maxRetryDelay, shouldStop: { false }, onFailure: log))
        try store(created.token, stateDirectory: stateDirectory)
        log("agent: enrolled as device \(created.device.id.uuidString.lowercased()); token kept in \(tokenPath(stateDirectory: stateDirectory))")
        return created.token
    }

    /// Writes the token to a file created 0600 (never readable by others, not even for a moment), then renames
    /// it into place.
    static func store(_ token: String, stateDirectory: String) throws {
        let path = tokenPath(stateDirectory: stateDirectory)
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temporary): errno \(errno)") }
        let bytes = Array((token + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else {
            unlink(temporary)
            throw Failure(description: "cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw Failure(description: "cannot rename \(temporary) to \(path): errno \(errno)") }
    }
}
