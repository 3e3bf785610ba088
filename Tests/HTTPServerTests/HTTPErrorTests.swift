import Foundation
import Testing
@testable import HTTPServer

@Suite struct HTTPErrorTests {
    @Test func problemDocumentHasExactlyTheRFC9457Members() throws {
        let error = HTTPError.validation([FieldError(field: "a.b", message: "is required")])
        let response = error.problemResponse(requestID: "req-1")
        #expect(response.status == 422)
        #expect(response.headers["Content-Type"] == "application/problem+json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(Set(object.keys) == ["type", "title", "status", "detail", "code", "request_id", "errors"])
        #expect(object["type"] as? String == "https://fleetadapt.dev/problems/validation_failed")
        #expect(object["title"] as? String == "Unprocessable Content")
        #expect(object["status"] as? Int == 422)
        #expect(object["code"] as? String == "validation_failed")
        #expect(object["request_id"] as? String == "req-1")
        let errors = try #require(object["errors"] as? [[String: String]])
        #expect(errors == [["field": "a.b", "message": "is required"]])
    }

    @Test func errorsMemberIsOmittedWhenEmpty() throws {
        let response = HTTPError.notFound("nope").problemResponse(requestID: "r")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(Set(object.keys) == ["type", "title", "status", "detail", "code", "request_id"])
        #expect(object["detail"] as? String == "nope")
    }

    @Test func factoriesCarryStatusCodeAndHeaders() {
        #expect(HTTPError.unauthorized("x").headers["WWW-Authenticate"] == "Bearer")
        #expect(HTTPError.unauthorized("x").status == 401)
        #expect(HTTPError.serviceUnavailable("busy", retryAfter: 5).headers["Retry-After"] == "5")
        #expect(HTTPError.payloadTooLarge(limit: 10).code == "payload_too_large")
        #expect(HTTPError.conflict("dup", code: "duplicate_name").code == "duplicate_name")
        #expect(HTTPError.preconditionFailed("etag").status == 412)
        #expect(HTTPError.forbidden("no").status == 403)
        let failure = HTTPError.internalError("rid-9")
        #expect(failure.status == 500 && failure.code == "internal_error" && failure.detail.contains("rid-9"))
        #expect(HTTPError(status: 418, code: "teapot", detail: "d").title == "HTTP 418")
    }

    @Test func jsonResponsesSortKeysAndUseISODates() {
        struct Payload: Encodable {
            var zeta = 1
            var alpha = "/x"
            var at = Date(timeIntervalSince1970: 0)
        }
        let response = HTTPResponse.json(Payload(), status: 201)
        #expect(response.status == 201)
        #expect(response.headers["Content-Type"] == "application/json")
        #expect(String(decoding: response.body, as: UTF8.self)
            == #"{"alpha":"/x","at":"1970-01-01T00:00:00Z","zeta":1}"#)
    }
}
