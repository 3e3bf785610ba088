import Foundation
import Logging

/// The coordinator's event log: a swift-log `Logger` (label `fleetadapt.coordinator`), so its lines take the
/// process's `--log-format` and `--log-level` like the access log and PostgreSQL's notices. The two functions are
/// kept so that every layer logs the same way; messages must never carry a secret (tokens, keys, passwords).
package enum Log {
    package static let logger = Logger(label: "fleetadapt.coordinator")

    package static func info(_ message: String) { logger.info("\(message)") }
    package static func warning(_ message: String) { logger.warning("\(message)") }
    package static func error(_ message: String) { logger.error("\(message)") }
}
