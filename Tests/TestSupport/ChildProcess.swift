import Foundation

/// Runs a program to its end and returns its exit status and everything it wrote (standard output and error
/// together): the real executables and tools tests drive.
public enum ChildProcess {
    /// - Parameters:
    ///   - environment: the child's whole environment (nil: this process's).
    ///   - directory: its working directory (nil: this process's).
    public static func run(_ argv: [String], environment: [String: String]? = nil,
                           directory: String? = nil) throws -> (status: Int32, output: String) {
        guard let executable = argv.first else { throw RawClientError(description: "ChildProcess.run needs a program") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// The package's executables, which `swift build --build-tests` puts beside the test bundle.
public enum BuiltProducts {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// The directories a built product may be in: that of the running test binary (`/proc/self/exe`, then
    /// `argv[0]`), and their parents' (the `.xctest` bundle is a directory on Darwin).
    static var directories: [URL] {
        var candidates: [URL] = []
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if me.path != "/proc/self/exe" { candidates.append(me.deletingLastPathComponent()) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
        if let bundle = Bundle.main.executableURL?.resolvingSymlinksInPath() { candidates.append(bundle.deletingLastPathComponent()) }
        var out: [URL] = []
        for c in candidates {
            var dir = c
            // Up out of an `.xctest` bundle (Darwin: Foo.xctest/Contents/MacOS/Foo).
            while dir.path.contains(".xctest") && dir.path != "/" { dir = dir.deletingLastPathComponent() }
            if !out.contains(dir) { out.append(dir) }
        }
        return out
    }

    /// The path of the executable product `name`; throws, saying where it looked and how to build it, when it is missing.
    public static func path(_ name: String) throws -> String {
        let looked = directories
        for dir in looked {
            let path = dir.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw Missing(description: "the executable \(name) is not beside the test binary (looked in "
                      + looked.map(\.path).joined(separator: ", ") + "): build it with `swift build --build-tests` before the tests")
    }
}
