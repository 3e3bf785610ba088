internal import CLibPQ
import Logging

/// PostgreSQL's notices and warnings (`NOTICE: relation … already exists, skipping`) reach the process's log
/// through swift-log at their own level, instead of libpq's default of printing them on stderr.
enum PostgresNotices {
    static let logger = Logger(label: "fleetadapt.postgres")

    static func install(on conn: OpaquePointer) {
        let receiver: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?) -> Void = postgresNoticeReceived
        _ = PQsetNoticeReceiver(conn, receiver, nil)
    }

    static func level(ofSeverity severity: String) -> Logger.Level {
        switch severity {
        case "DEBUG": return .debug
        case "LOG", "INFO": return .info
        case "NOTICE": return .notice
        case "WARNING": return .warning
        default: return .error
        }
    }
}

/// libpq's notice receiver: a top-level C function with no context (the severity and text come from the result).
func postgresNoticeReceived(_ arg: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
    guard let result else { return }
    func field(_ code: UInt8) -> String? {
        guard let p = PQresultErrorField(result, Int32(code)) else { return nil }
        return String(cString: p)
    }
    let severity = field(UInt8(ascii: "V")) ?? field(UInt8(ascii: "S")) ?? "NOTICE"
    let message = field(UInt8(ascii: "M")) ?? ""
    var metadata: Logger.Metadata = ["severity": .string(severity)]
    if let code = field(UInt8(ascii: "C")) { metadata["sqlstate"] = .string(code) }
    PostgresNotices.logger.log(level: PostgresNotices.level(ofSeverity: severity), "\(message)", metadata: metadata)
}
