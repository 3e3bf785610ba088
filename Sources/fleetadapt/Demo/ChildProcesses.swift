import ArgumentParser
import Foundation

/// The processes a command started, stopped together (in reverse order) when it ends.
final class ChildProcesses {
    private var children: [Process] = []

    /// Starts `executable` with `arguments`; its output goes to `log` (appended) or is dropped.
    @discardableResult
    func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:], log: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        if let log {
            try FileManager.default.createDirectory(atPath: (log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = FileHandle(forWritingAtPath: log)
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        }
        try process.run()
        children.append(process)
        return process
    }

    /// Asks every child to stop (SIGTERM), waits up to `seconds` for each, then kills what still runs.
    func stopAll(seconds: Double = 30) {
        for p in children.reversed() where p.isRunning { p.terminate() }
        for p in children.reversed() {
            let deadline = Date().addingTimeInterval(seconds)
            while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        children.removeAll()
    }

    deinit { stopAll() }
}

extension ChildProcesses {
    /// A secret a child reads from a file (a device token: `--token-file`), readable by this user only (0600, its
    /// directory 0700), so it is neither on a command line nor in the child's environment.
    static func writeSecret(_ text: String, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try? FileManager.default.removeItem(atPath: path)
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("could not write \(path)")
        }
    }
}
