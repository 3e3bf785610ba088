import Foundation

/// The request methods the router dispatches on; anything else is answered 405 (or 404) before routing.
public enum HTTPMethod: String, Sendable, CaseIterable {
    case GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS

    /// Parses MHD's NUL-terminated method token; the common methods are matched without allocating.
    init?(token: UnsafePointer<CChar>) {
        let bytes = UnsafeRawBufferPointer(start: token, count: strlen(token))
        switch bytes.count {
        case 3 where bytes[0] == 0x47 && bytes[1] == 0x45 && bytes[2] == 0x54: self = .GET
        case 3 where bytes[0] == 0x50 && bytes[1] == 0x55 && bytes[2] == 0x54: self = .PUT
        case 4 where bytes[0] == 0x50 && bytes[1] == 0x4F && bytes[2] == 0x53 && bytes[3] == 0x54: self = .POST
        default:
            guard let method = HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self)) else { return nil }
            self = method
        }
    }
}
