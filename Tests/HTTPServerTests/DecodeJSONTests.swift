import Foundation
import Testing
@testable import HTTPServer

@Suite struct DecodeJSONTests {
    struct Limits: Codable, Equatable {
        var memoryMB: Int
        var gflops: Double
        enum CodingKeys: String, CodingKey {
            case memoryMB = "memory_mb"
            case gflops
        }
    }

    struct Device: Codable, Equatable {
        var name: String
        var tags: [String]
        var limits: Limits
        var seen: Date?
    }

    struct Positive: Decodable {
        var count: Int
        enum CodingKeys: String, CodingKey { case count }
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            count = try container.decode(Int.self, forKey: .count)
            guard count > 0 else {
                throw DecodingError.dataCorruptedError(forKey: .count, in: container,
                                                       debugDescription: "must be positive")
            }
        }
    }

    func request(_ json: String) -> HTTPRequest {
        HTTPRequest(method: .POST, path: "/", body: Array(json.utf8), requestID: "rid")
    }

    func decodeError<T: Decodable>(_ json: String, as type: T.Type) -> HTTPError? {
        do {
            _ = try request(json).decodeJSON(type)
            return nil
        } catch {
            return error as? HTTPError
        }
    }

    @Test func decodesValidBodyIncludingFractionalDates() throws {
        let json = #"{"name":"cam-1","tags":["a"],"limits":{"memory_mb":512,"gflops":2.5},"seen":"2026-01-02T03:04:05.250Z"}"#
        let device = try request(json).decodeJSON(Device.self)
        #expect(device.name == "cam-1")
        #expect(device.limits == Limits(memoryMB: 512, gflops: 2.5))
        #expect(device.seen == Date(timeIntervalSince1970: 1_767_323_045.25))
    }

    @Test func malformedOrNonObjectBodiesAre400() {
        for body in ["{", "", "not json", "[1,2]", "42", "null"] {
            let error = decodeError(body, as: Device.self)
            #expect(error?.status == 400, "\(body)")
            #expect(error?.code == "invalid_json", "\(body)")
        }
    }

    @Test func missingAndMistypedFieldsAre422WithDottedPaths() {
        let missing = decodeError(#"{"name":"x","tags":[],"limits":{"gflops":1}}"#, as: Device.self)
        #expect(missing?.status == 422)
        #expect(missing?.code == "validation_failed")
        #expect(missing?.errors == [FieldError(field: "limits.memory_mb", message: "is required")])

        let mistyped = decodeError(#"{"name":"x","tags":["a",7],"limits":{"memory_mb":1,"gflops":1}}"#,
                                   as: Device.self)
        #expect(mistyped?.errors == [FieldError(field: "tags.1", message: "must be a string")])

        let null = decodeError(#"{"name":null,"tags":[],"limits":{"memory_mb":1,"gflops":1}}"#, as: Device.self)
        #expect(null?.errors.map(\.field) == ["name"])

        let badDate = decodeError(#"{"name":"x","tags":[],"limits":{"memory_mb":1,"gflops":1},"seen":"yesterday"}"#,
                                  as: Device.self)
        #expect(badDate?.status == 422)
        #expect(badDate?.errors.map(\.field) == ["seen"])
    }

    @Test func validationInsideInitFromIsA422OnThatField() {
        let error = decodeError(#"{"count":-1}"#, as: Positive.self)
        #expect(error?.status == 422)
        #expect(error?.errors == [FieldError(field: "count", message: "must be positive")])
    }
}
