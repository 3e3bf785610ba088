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
