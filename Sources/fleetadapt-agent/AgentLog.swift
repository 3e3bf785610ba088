import Agent
import CommandSupport
import Logging

/// The agent's log lines: with `--log-format text` exactly as before (one line on standard output); with json or
/// logfmt, through swift-log (still on standard output, where the agent has always logged).
enum AgentLog {
    static let logger = Logger(label: "fleetadapt.agent")

    @Sendable static func line(_ message: String) {
        if ProcessLogging.options.format == .text {
            AgentRunner.writeLine(message)
        } else {
            let failed = message.contains("failed") || message.contains("could not") || message.contains("lost")
            logger.log(level: failed ? .warning : .info, "\(message)")
        }
    }
}
