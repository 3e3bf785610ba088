import Foundation
import HTTPServer

/// `limit` and `after` of cursor-paginated lists.
struct ListQuery {
    static let defaultLimit = 50
    static let maxLimit = 500

    let limit: Int
    let after: UUID?

    /// `cursorIsUUID: false` leaves `after` to the caller (lists keyed by something else, like config versions).
    init(_ request: HTTPRequest, cursorIsUUID: Bool = true) throws {
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
enum IdempotencyKey {
    static func from(_ request: HTTPRequest) throws -> String? {
        guard let key = request.headers["Idempotency-Key"] else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x21 && $0 < 0x7f }) else {
            throw HTTPError.badRequest("Idempotency-Key must be 1–255 visible ASCII characters.", code: "invalid_header",
                                       errors: [FieldError(field: "Idempotency-Key", message: "must be 1–255 visible ASCII characters")])
        }
        return key
    }
}

/// Entity tags are `"v<version>"`; `If-Match` carries the version the client last read.
enum ETag {
    /// nil when there is no `If-Match` or it is `*`; a malformed value is a 400, an unknown one a 412.
    static func expectedVersion(_ request: HTTPRequest) throws -> Int? {
        guard let raw = request.headers["If-Match"]?.trimmingCharacters(in: .whitespaces) else { return nil }
        if raw == "*" { return nil }
        var text = Substring(raw)
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        guard text.count >= 4, text.first == "\"", text.last == "\"", text.dropFirst().first == "v",
              let version = Int(text.dropFirst(2).dropLast()) else {
            throw HTTPError.badRequest("If-Match must be an ETag previously returned, like \"v3\".", code: "invalid_header",
                                       errors: [FieldError(field: "If-Match", message: "must be an entity tag like \"v3\"")])
        }
        return version
    }
}

extension HTTPRequest {
    /// Whether `If-None-Match` names `etag` (or `*`): the caller already holds this representation, answer 304.
    func ifNoneMatch(_ etag: String) -> Bool {
        guard let header = headers["If-None-Match"] else { return false }
        return header.split(separator: ",").contains { let t = $0.trimmingCharacters(in: .whitespaces); return t == etag || t == "*" }
    }
}
