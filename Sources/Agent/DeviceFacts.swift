import Foundation

/// What the device can tell about itself without being told: today its free memory, from `/proc/meminfo`.
/// (The rest of its context — battery, link, edge server — is declared on the command line.)
enum DeviceFacts {
    /// `MemAvailable` in MiB; nil where the file is missing (not Linux) or has no such line.
    static func freeMemoryMB(meminfoPath: String = "/proc/meminfo") -> Double? {
        guard let text = try? String(contentsOfFile: meminfoPath, encoding: .utf8) else { return nil }
        return memAvailableMB(meminfo: text)
    }

    /// The `MemAvailable:` line of a `/proc/meminfo` text (in kB there), in MiB.
    static func memAvailableMB(meminfo: String) -> Double? {
        meminfo.split(separator: "\n").first { $0.hasPrefix("MemAvailable:") }
            .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Double($0) }.map { $0 / 1024 }
    }
}
