import Foundation

/// What `--version` prints on every executable: the release this source tree is (a committed constant, bumped
/// with each release) and the git revision it was built from.
///
/// SwiftPM has no build step that runs `git` without a plugin, so the revision is whichever of these comes first:
/// `BuildStamp.revision`, written into BuildStamp.swift by `deploy/tools/stamp-revision.sh` before a release
/// build (the committed file says "unknown"); the environment's `FLEETADAPT_GIT_REVISION` (set by the image or
/// unit that runs the binary); else "unknown". Nothing is guessed.
public enum FleetAdaptVersion {
    public static let version = "0.9.0"

    public static var revision: String {
        if BuildStamp.revision != "unknown" { return BuildStamp.revision }
        if let r = ProcessInfo.processInfo.environment["FLEETADAPT_GIT_REVISION"], !r.isEmpty,
           r.utf8.count <= 64, r.allSatisfy({ $0.isLetter || $0.isNumber || "-._+".contains($0) }) { return r }
        return "unknown"
    }

    /// "0.9.0 (revision 1a2b3c4)" — argument-parser prints it for `--version`.
    public static var line: String { "\(version) (revision \(revision))" }
}
