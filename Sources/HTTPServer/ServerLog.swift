internal import CMicroHTTPD
import Foundation
import Logging

/// The server's own log (libmicrohttpd's messages, causes of 500s) and the access log: swift-log loggers, so they
/// take the process's handler, format and level.
enum ServerLog {
    static let logger = Logger(label: "fleetadapt.http")
}

/// One finished request, as the access log records it.
public struct AccessLogEntry: Sendable {
    public var method: String
    /// The matched route's pattern ("/v1/devices/{id}"), or "-" when no route matched.
    public var route: String
    /// The path as sent, only when no route matched (else the pattern says it, without ids).
    public var unmatchedPath: String?
    /// 0 when the request was aborted before a response.
    public var status: Int
    public var bytes: Int
    public var seconds: Double
    public var requestID: String
    public var client: String?
    public var actor: String?

    /// The text line the `accessLog` closure receives: `METHOD path status bytesB millisms request-id`.
    public var textLine: String {
        let micros = Int((seconds * 1_000_000).rounded())
        let millis = "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
        let shown = unmatchedPath ?? route
        let path = shown.utf8.count > 512 ? shown.prefix(512) + "..." : Substring(shown)
        return "\(method) \(path) \(status == 0 ? "aborted" : String(status)) \(bytes)B \(millis)ms \(requestID)"
    }

    /// Logs the entry as one line: message "request" with the fields as metadata. 5xx at error, 4xx at notice.
    public func log(to logger: Logger) {
        var metadata: Logger.Metadata = [
            "method": .string(method), "route": .string(route), "status": .stringConvertible(status),
            "bytes": .stringConvertible(bytes), "duration_seconds": .stringConvertible((seconds * 1_000_000).rounded() / 1_000_000),
            "request_id": .string(requestID),
        ]
        if let unmatchedPath { metadata["path"] = .string(String(unmatchedPath.prefix(512))) }
        if let client { metadata["client"] = .string(client) }
        if let actor { metadata["actor"] = .string(actor) }
        let level: Logger.Level = status >= 500 ? .error : (status >= 400 || status == 0 ? .notice : .info)
        logger.log(level: level, "request", metadata: metadata)
    }
}

/// libmicrohttpd's messages (MHD_OPTION_EXTERNAL_LOGGER, formatted by the C shim) at warning: MHD logs only
/// trouble (refused connections, TLS handshake failures, its own errors). A top-level C function, no context.
func mhdLogged(_ message: UnsafePointer<CChar>?) {
    guard let message else { return }
    let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    guard !text.isEmpty else { return }
    ServerLog.logger.warning("\(text)", metadata: ["source": "libmicrohttpd"])
}

extension HTTPServer {
    /// The EXTERNAL_LOGGER option every daemon is started with.
    static func loggerOption() -> MHD_OptionItem {
        let fn: fleetadapt_mhd_message_fn = mhdLogged
        return MHD_OptionItem(option: .EXTERNAL_LOGGER, value: Int(bitPattern: fleetadapt_mhd_logger_callback()),
                              ptr_value: unsafeBitCast(fn, to: UnsafeMutableRawPointer.self))
    }
}
