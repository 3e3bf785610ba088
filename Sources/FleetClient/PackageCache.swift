import FleetAPI
import Foundation

/// Model packages downloaded from the coordinator, kept by SHA-256 under one directory and revalidated with
/// If-None-Match on every use; a download whose SHA-256 differs from the coordinator's ETag is refused. Used by
/// the agent for its jobs and by the edge runtime for the suffixes it runs.
public struct PackageCache: Sendable {
    public let directory: String
    let client: CoordinatorClient

    public init(directory: String, client: CoordinatorClient) {
        self.directory = directory
        self.client = client
    }

    /// The path of model `id`'s package, downloaded when missing or changed.
    public func file(for id: UUID) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pointer = directory + "/\(id.uuidString.lowercased()).sha256"
        let cachedDigest = (try? String(contentsOfFile: pointer, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let held = cachedDigest.flatMap { FileManager.default.fileExists(atPath: directory + "/\($0).fap") ? $0 : nil }
        let body: Data, etag: String?
        switch try client.package(id: id, ifNoneMatch: held) {
        case .notModified:
            guard let held else { throw CoordinatorClient.Failure(description: "model \(id) download: HTTP 304") }
            return directory + "/\(held).fap"
        case .package(let data, let tag):
            (body, etag) = (data, tag)
        case .failed(let status):
            throw CoordinatorClient.Failure(description: "model \(id) download: HTTP \(status)")
        }
        let digest = CoordinatorClient.sha256Hex(body)
        guard etag == "\"\(digest)\"" else {
            throw CoordinatorClient.Failure(description: "model \(id) download is corrupt: SHA-256 \(digest) does not match \(etag ?? "no ETag")")
        }
        let path = directory + "/\(digest).fap"
        try body.write(to: URL(fileURLWithPath: path), options: .atomic)
        try digest.write(toFile: pointer, atomically: true, encoding: .utf8)
        return path
    }
}
