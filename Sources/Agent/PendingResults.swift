import FleetAPI
import FleetClient
import Foundation

/// Finished job results that the coordinator does not have yet, on disk in the agent's state directory: the result
/// JSON and, for `adapt`, the trained adapters. A result is saved before its first delivery and removed once the
/// coordinator answered it, so an outage, however long, or a restart of the agent never loses trained work.
///
/// Layout: `<job>-<attempt>.artifact` (safetensors, written first), then `<job>-<attempt>.json` (written
/// atomically); an entry exists once its JSON does, so a crash between the two leaves nothing half-delivered.
struct PendingResults: Sendable {
    let directory: String

    struct Entry: Codable, Sendable, Equatable {
        var jobID: UUID
        var result: JobResult
        var hasArtifact: Bool

        enum CodingKeys: String, CodingKey {
            case jobID = "job_id"
            case result
            case hasArtifact = "has_artifact"
        }

        var name: String { "\(jobID.uuidString.lowercased())-\(result.attempt)" }
    }

    /// Creates the directory (0700: it holds the device's trained weights).
    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    private func path(_ entry: Entry, _ suffix: String) -> String { directory + "/" + entry.name + suffix }

    func save(job: UUID, result: JobResult, artifact: Data?) throws -> Entry {
        let entry = Entry(jobID: job, result: result, hasArtifact: artifact != nil)
        if let artifact { try artifact.write(to: URL(fileURLWithPath: path(entry, ".artifact")), options: .atomic) }
        try WireJSON.encode(entry).write(to: URL(fileURLWithPath: path(entry, ".json")), options: .atomic)
        return entry
    }

    /// Every saved entry, oldest first; unreadable files are skipped (and left for the operator).
    func all() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let entries: [(Date, Entry)] = names.filter { $0.hasSuffix(".json") }.compactMap { name in
            let file = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: file),
                  let entry = try? WireJSON.decode(Entry.self, from: data) else { return nil }
            let modified = (try? FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date) ?? .distantPast
            return (modified, entry)
        }
        return entries.sorted { $0.0 < $1.0 }.map(\.1)
    }

    func artifact(of entry: Entry) -> Data? {
        entry.hasArtifact ? FileManager.default.contents(atPath: path(entry, ".artifact")) : nil
    }

    func remove(_ entry: Entry) {
        try? FileManager.default.removeItem(atPath: path(entry, ".json"))
        try? FileManager.default.removeItem(atPath: path(entry, ".artifact"))
    }
}
