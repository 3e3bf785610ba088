/// An error that knows how it should look on the wire; the server renders it as RFC 9457 problem+json in one place
/// (`HTTPError.problemResponse`), so handlers only choose status, code and words.
public struct HTTPError: Error, Sendable {
    public var status: Int
    /// Stable machine-readable code, also the last segment of the problem `type` URI.
    public var code: String
    public var title: String
    public var detail: String
    public var errors: [FieldError]
    /// Extra response headers (WWW-Authenticate, Retry-After, Allow, ...).
    public var headers: HTTPHeaders

    public init(status: Int, code: String, title: String? = nil, detail: String,
                errors: [FieldError] = [], headers: HTTPHeaders = .init()) {
        self.status = status
        self.code = code
        self.title = title ?? HTTPStatus.reasonPhrase(status)
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    /// Base of every problem `type` URI.
    public static let typeBase = "https://fleetadapt.dev/problems/"

    public var typeURI: String { Self.typeBase + code }

    public static func badRequest(_ detail: String, code: String = "bad_request",
                                  errors: [FieldError] = []) -> HTTPError {
        HTTPError(status: 400, code: code, detail: detail, errors: errors)
    }

    /// 422 with one entry per invalid field.
    public static func validation(_ errors: [FieldError]) -> HTTPError {
        let detail = errors.count == 1
            ? "The field '\(errors[0].field)' is invalid: \(errors[0].message)"
            : "\(errors.count) fields are invalid."
        return HTTPError(status: 422, code: "validation_failed", detail: detail, errors: errors)
    }

    public static func notFound(_ detail: String) -> HTTPError {
        HTTPError(status: 404, code: "not_found", detail: detail)
    }

    /// 401 carrying `WWW-Authenticate: Bearer` as RFC 6750 asks.
    public static func unauthorized(_ detail: String) -> HTTPError {
        HTTPError(status: 401, code: "unauthorized", detail: detail,
                  headers: ["WWW-Authenticate": "Bearer"])
    }

    public static func forbidden(_ detail: String) -> HTTPError {
        HTTPError(status: 403, code: "forbidden", detail: detail)
    }

    public static func conflict(_ detail: String, code: String = "conflict") -> HTTPError {
        HTTPError(status: 409, code: code, detail: detail)
    }

    public static func preconditionFailed(_ detail: String) -> HTTPError {
        HTTPError(status: 412, code: "precondition_failed", detail: detail)
    }

    public static func payloadTooLarge(limit: Int) -> HTTPError {
        HTTPError(status: 413, code: "payload_too_large",
                  detail: "The request body exceeds the limit of \(limit) bytes for this route.")
    }

    /// 503; `retryAfter` (seconds) becomes a `Retry-After` header.
    public static func serviceUnavailable(_ detail: String, retryAfter: Int? = nil) -> HTTPError {
        var headers = HTTPHeaders()
        if let retryAfter { headers.set("Retry-After", String(retryAfter)) }
        return HTTPError(status: 503, code: "service_unavailable", detail: detail, headers: headers)
    }

    /// 500 that says nothing about the cause; the cause goes to the log under the same request id.
    public static func internalError(_ requestID: String) -> HTTPError {
        HTTPError(status: 500, code: "internal_error",
                  detail: "An internal error occurred. Quote request id \(requestID) when reporting it.")
    }

    public static func methodNotAllowed(_ allowed: [HTTPMethod]) -> HTTPError {
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        return HTTPError(status: 405, code: "method_not_allowed",
                         detail: "This resource supports: \(list).", headers: ["Allow": list])
    }
}

extension HTTPError: CustomStringConvertible {
    public var description: String { "HTTPError(\(status) \(code): \(detail))" }
}
