import Foundation

public struct FieldError: Codable, Sendable, Equatable {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// An error that reaches HTTP: its status and stable code, rendered in one place as RFC 9457 problem+json.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var title: String
    public var detail: String
    public var errors: [FieldError]
    public var headers: HTTPHeaders

    public init(status: Int, code: String, title: String? = nil, detail: String, errors: [FieldError] = [],
                headers: HTTPHeaders = .init()) {
        self.status = status
        self.code = code
        self.title = title ?? HTTPError.reason(status)
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    public var description: String { "\(status) \(code): \(detail)" }

    public static func badRequest(_ detail: String, code: String = "bad_request", errors: [FieldError] = []) -> HTTPError {
        HTTPError(status: 400, code: code, detail: detail, errors: errors)
    }

    public static func validation(_ errors: [FieldError]) -> HTTPError {
        let fields = errors.map(\.field).joined(separator: ", ")
        return HTTPError(status: 422, code: "validation_failed", detail: "The request body has invalid fields: \(fields).", errors: errors)
    }

    public static func notFound(_ detail: String) -> HTTPError { HTTPError(status: 404, code: "not_found", detail: detail) }

    public static func unauthorized(_ detail: String) -> HTTPError {
        HTTPError(status: 401, code: "unauthorized", detail: detail, headers: ["WWW-Authenticate": "Bearer realm=\"fleetadapt\""])
    }

    public static func forbidden(_ detail: String) -> HTTPError { HTTPError(status: 403, code: "forbidden", detail: detail) }

    public static func conflict(_ detail: String, code: String = "conflict") -> HTTPError {
        HTTPError(status: 409, code: code, detail: detail)
    }

    public static func preconditionFailed(_ detail: String) -> HTTPError {
        HTTPError(status: 412, code: "precondition_failed", detail: detail)
    }

    public static func payloadTooLarge(limit: Int) -> HTTPError {
        HTTPError(status: 413, code: "payload_too_large", detail: "The request body is larger than this route's limit of \(limit) bytes.",
                  errors: [FieldError(field: "body", message: "must be at most \(limit) bytes")])
    }

    public static func serviceUnavailable(_ detail: String, retryAfter: Int) -> HTTPError {
        HTTPError(status: 503, code: "service_unavailable", detail: detail, headers: ["Retry-After": String(retryAfter)])
    }

    public static func internalError(_ requestID: String) -> HTTPError {
        HTTPError(status: 500, code: "internal_error",
                  detail: "An unexpected error occurred; it has been logged with request id \(requestID).")
    }

    /// The problem+json document.
    func response(requestID: String) -> HTTPResponse {
        var object: [String: Any] = [
            "type": "https://fleetadapt.dev/problems/\(code.replacingOccurrences(of: "_", with: "-"))",
            "title": title, "status": status, "detail": detail, "code": code, "request_id": requestID,
        ]
        if !errors.isEmpty { object["errors"] = errors.map { ["field": $0.field, "message": $0.message] } }
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        var headers = self.headers
        headers.set("Content-Type", "application/problem+json")
        return HTTPResponse(status: status, headers: headers, body: Array(body))
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "HTTP \(status)"
        }
    }
}
