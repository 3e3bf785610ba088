import Foundation

/// Waiting for a server this process started (the demo's coordinator and edge server).
extension CoordinatorClient {
    /// Polls `probe` (e.g. `ready()` or `healthy()`) every `interval` seconds until it answers true, at most `tries`
    /// times; a probe that throws (nothing listening yet) counts as not yet. Returns whether it answered true.
    public func waitUntil(tries: Int, every interval: TimeInterval, _ probe: (CoordinatorClient) throws -> Bool) -> Bool {
        for _ in 0..<max(0, tries) {
            Thread.sleep(forTimeInterval: interval)
            if (try? probe(self)) == true { return true }
        }
        return false
    }
}
