import Foundation
import HTTPServer

/// `limit` and `after` of cursor-paginated lists.
package struct ListQuery {
    package static let defaultLimit = 50
    package static let maxLimit = 500

    package let limit: Int
    package let after: UUID?

    /// `cursorIsUUID: false` leaves `after` to the caller (lists keyed by something else, like config versions).
    package init(_ request: HTTPRequest, cursorIsUUID: Bool = true) throws {
        if let text = request.query["limit"] {
            guard let n = Int(text), (1...Self.maxLimit).contains(n) else {
                throw HTTPError.badRequest("limit must be an integer from 1 to \(Self.maxLimit).", code: "invalid_parameter",
                                           errors: [FieldError(field: "limit", message: "must be an integer from 1 to \(Self.maxLimit)")])
            }
            limit = n
        } else {
            limit = Self.defaultLimit
        }
        if cursorIsUUID, let text = request.query["after"] {
            guard let id = UUID(uuidString: text) else {
                throw HTTPError.badRequest("after must be the `next` value of a previous page.", code: "invalid_parameter",
                                           errors: [FieldError(field: "after", message: "must be a cursor returned as `next`")])
            }
            after = id
        } else {
            after = nil
        }
    }
}

/// The `Idempotency-Key` header of creating POSTs.
package enum IdempotencyKey {
    package static func from(_ request: HTTPRequest) throws -> String? {
        guard let key = request.headers["Idempotency-Key"] else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x21 && $0 < 0x7f }) else {
            throw HTTPError.badRequest("Idempotency-Key must be 1–255 visible ASCII characters.", code: "invalid_header",
                                       errors: [FieldError(field: "Idempotency-Key", message: "must be 1–255 visible ASCII characters")])
        }
        return key
    }
}

extension HTTPRequest {
    /// Whether `If-None-Match` names `etag` (or `*`): the caller already holds this representation, answer 304.
    package func ifNoneMatch(_ etag: String) -> Bool {
        guard let header = headers["If-None-Match"] else { return false }
        return header.split(separator: ",").contains { let t = $0.trimmingCharacters(in: .whitespaces); return t == etag || t == "*" }
    }
}
