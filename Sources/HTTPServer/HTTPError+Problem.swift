import Foundation

/// The RFC 9457 body; keys spelled as the RFC and DESIGN.md §5 want them.
struct ProblemDocument: Codable, Sendable, Equatable {
    var type: String
    var title: String
    var status: Int
    var detail: String
    var code: String
    var requestID: String
    var errors: [FieldError]?

    enum CodingKeys: String, CodingKey {
        case type, title, status, detail, code, errors
        case requestID = "request_id"
    }
}

extension HTTPError {
    /// The single place an error becomes bytes on the wire.
    func problemResponse(requestID: String) -> HTTPResponse {
        let document = ProblemDocument(type: typeURI, title: title, status: status, detail: detail, code: code,
                                       requestID: requestID, errors: errors.isEmpty ? nil : errors)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and ints cannot fail; the fallback keeps the function total anyway.
        let body = (try? encoder.encode(document)).map { [UInt8]($0) } ?? Array(#"{"status":500}"#.utf8)
        var response = HTTPResponse(status: status, headers: headers, body: body)
        response.headers.set("Content-Type", "application/problem+json")
        return response
    }
}

/// Any error a handler throws, as a response: an `HTTPError` speaks for itself; anything else is logged and
/// becomes a bare 500 so internals never reach the client.
func problem(for error: any Error, requestID: String) -> HTTPResponse {
    if let error = error as? HTTPError { return error.problemResponse(requestID: requestID) }
    reportInternalError(error, context: "handling request \(requestID)")
    return HTTPError.internalError(requestID).problemResponse(requestID: requestID)
}
