import FleetAPI
import Foundation

/// A refusal from the coordinator (any non-2xx answer to a typed admin call): the RFC 9457 problem+json body
/// decoded, so callers can act on the stable `code` and the fields named in `errors`.
public struct ProblemError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    /// The stable machine-readable code (`validation_failed`, `not_found`, …); nil when the body was not a problem.
    public var code: String?
    public var title: String?
    public var detail: String?
    /// The invalid input fields, each with a dotted path and a message.
    public var errors: [ValidationIssue]
    /// What was asked, for messages: `POST /v1/domains`.
    public var request: String

    public init(status: Int, code: String?, title: String?, detail: String?, errors: [ValidationIssue], request: String) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors
        self.request = request
    }

    /// The problem in an answer's body; a body that is not problem+json keeps its first bytes as the detail.
    public init(status: Int, body: Data, request: String) {
        struct Document: Decodable {
            var title: String?
            var detail: String?
            var code: String?
            var errors: [ValidationIssue]?
        }
        self.status = status
        self.request = request
        if let document = try? WireJSON.decode(Document.self, from: body) {
            code = document.code
            title = document.title
            detail = document.detail
            errors = document.errors ?? []
        } else {
            code = nil
            title = nil
            detail = body.isEmpty ? nil : String(decoding: body.prefix(512), as: UTF8.self)
            errors = []
        }
    }

    public var description: String {
        var text = "\(request): HTTP \(status)"
        if let code { text += " \(code)" }
        if let detail { text += ": \(detail)" }
        if !errors.isEmpty { text += " (" + errors.map(\.description).joined(separator: "; ") + ")" }
        return text
    }
}
