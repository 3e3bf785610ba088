import Foundation

/// Foundation's JSON decoder, only in tests (the Planner module itself does not import Foundation).
enum JSONDecoderShim {
    static func decode<T: Decodable>(_ type: T.Type, from json: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(json.utf8))
    }
}
