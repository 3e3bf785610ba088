import Foundation

/// One line per event on stderr, so that logs interleave correctly with the access log.
package enum Log {
    package static func info(_ message: String) { write("info", message) }
    package static func error(_ message: String) { write("error", message) }

    private static func write(_ level: String, _ message: String) {
        let line = "\(Date().ISO8601Format()) \(level) \(message)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
