import Foundation

/// Finds the repository's `migrations/` and `openapi/` when they are not given explicitly:
/// `$FLEETADAPT_HOME`, the working directory, then the ancestors of the running executable
/// (a `swift build` binary lives in `<repo>/.build/<triple>/debug/`).
public enum ResourceLocator {
    public static func directory(named name: String) -> String? {
        candidates().map { $0 + "/" + name }.first { isDirectory($0) }
    }

    public static func file(at relativePath: String) -> String? {
        candidates().map { $0 + "/" + relativePath }.first { FileManager.default.fileExists(atPath: $0) }
    }

    static func candidates() -> [String] {
        var roots: [String] = []
        if let home = ProcessInfo.processInfo.environment["FLEETADAPT_HOME"], !home.isEmpty { roots.append(home) }
        roots.append(FileManager.default.currentDirectoryPath)
        var url = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            roots.append(url.path)
            url.deleteLastPathComponent()
        }
        return roots
    }

    static func isDirectory(_ path: String) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
    }
}
