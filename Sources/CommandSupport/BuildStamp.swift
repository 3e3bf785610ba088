// Rewritten by deploy/tools/stamp-revision.sh before a release build; the committed value is "unknown".
enum BuildStamp {
    static let revision = "unknown"
}
