import Foundation

/// A progress bar with an ETA on standard error. On a terminal it redraws one line; otherwise (CI, pipes) it
/// prints a line at every tenth, so logs stay short.
final class ProgressBar {
    private let label: String
    private var start = Date()
    private var lastDecile = -1
    private let isTerminal = isatty(STDERR_FILENO) == 1

    init(_ label: String) { self.label = label }

    func update(_ done: Int, of total: Int) {
        if done == 0 { start = Date() }
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 && done < total ? elapsed / Double(done) * Double(total - done) : 0
        let bar = Self.bar(fraction)
        let text = String(format: "%@ [%@] %d/%d  %@ elapsed  ETA %@", label.padding(toLength: 20, withPad: " ", startingAt: 0), bar, done, total,
                          Self.clock(elapsed), done >= total ? "done" : Self.clock(eta))
        if isTerminal {
            FileHandle.standardError.write(Data(("\r" + text + (done >= total ? "\n" : "")).utf8))
        } else {
            let decile = Int(fraction * 10)
            if decile != lastDecile || done >= total { lastDecile = decile; FileHandle.standardError.write(Data((text + "\n").utf8)) }
        }
    }

    /// `#########.....`: `fraction` (clamped to 0…1) of `width` characters filled.
    static func bar(_ fraction: Double, width: Int = 30) -> String {
        let filled = Int(min(1, max(0, fraction)) * Double(width))
        return String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}
