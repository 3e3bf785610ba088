import FleetAPI
import Foundation
import Testing

@Suite struct WireJSONTests {
    @Test func timestampsAreRFC3339WithMicroseconds() {
        let date = Date(timeIntervalSince1970: 1_796_142_325.000042)
        #expect(WireTimestamp.format(date) == "2026-12-01T16:25:25.000042Z")
        #expect(WireTimestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500000Z")
        for text in ["2026-12-01T16:25:25.000042Z", "2026-12-01T17:25:25.000042+01:00", "2026-12-01T16:25:25.0000420Z"] {
            #expect(WireTimestamp.parse(text).map(WireTimestamp.format) == "2026-12-01T16:25:25.000042Z", "\(text)")
        }
        #expect(WireTimestamp.parse("2026-12-01T16:25:25Z").map(WireTimestamp.format) == "2026-12-01T16:25:25.000000Z")
    }

    @Test func malformedTimestampsAreRefused() {
        for text in ["", "yesterday", "2026-12-01", "2026-12-01T16:25:25", "2026-02-30T00:00:00Z", "2026-12-01T24:00:00Z",
                     "2026-12-01T16:25:25.Z", "2026-12-01T16:25:25Zjunk", "2026-13-01T00:00:00Z"] {
            #expect(WireTimestamp.parse(text) == nil, "\(text)")
        }
    }

    @Test func aBadDateFailsTheDecodeInsteadOfBecomingNow() {
        struct Stamp: Codable { var at: Date }
        #expect(throws: DecodingError.self) { _ = try WireJSON.decode(Stamp.self, from: Data(#"{"at": "not a date"}"#.utf8)) }
        #expect((try? WireJSON.decode(Stamp.self, from: try WireJSON.encode(Stamp(at: Date(timeIntervalSince1970: 12.5)))))?.at
                == Date(timeIntervalSince1970: 12.5))
    }

    @Test func keysAreSortedAndUUIDsLowerCase() throws {
        let id = UUID(uuidString: "ABCDEF01-2345-6789-ABCD-EF0123456789")!
        let text = String(decoding: try WireJSON.encode(DomainRequest.Selector(deviceIDs: [id])), as: UTF8.self)
        #expect(text == #"{"device_ids":["abcdef01-2345-6789-abcd-ef0123456789"]}"#)
    }
}
