import Foundation
import Testing

/// Every bad input named by the registry issue: a 4xx problem naming the field, nothing written.
@Suite struct BadInputTests {
    let c: TestCoordinator
    init() throws { c = try TestCoordinator() }

    static let valid = #"{"name": "cam", "hardware": {"class": "jetson-tx2", "gflops": 20, "memory_mb": 4096}, "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}}"#

    /// (body, expected status, expected field or nil when the problem is about the whole body)
    static let cases: [(String, Int, String?)] = [
        ("{not json", 400, nil),
        ("[1, 2, 3]", 400, nil),
        ("\"a string\"", 400, nil),
        ("", 400, nil),
        (valid.replacingOccurrences(of: #""gflops": 20"#, with: #""gflops": "fast""#), 422, "hardware.gflops"),
        (valid.replacingOccurrences(of: #""gflops": 20"#, with: #""gflops": "NaN""#), 422, "hardware.gflops"),
        (valid.replacingOccurrences(of: #""name": "cam""#, with: #""name": 7"#), 422, "name"),
        (valid.replacingOccurrences(of: #""name": "cam", "#, with: ""), 422, "name"),
        (valid.replacingOccurrences(of: #", "memory_mb": 4096"#, with: ""), 422, "hardware.memory_mb"),
        (valid.replacingOccurrences(of: #""name": "cam""#, with: #""name": """#), 422, "name"),
        (valid.replacingOccurrences(of: #""name": "cam""#, with: #""name": "   ""#), 422, "name"),
        (valid.replacingOccurrences(of: #""name": "cam""#, with: "\"name\": \"\(String(repeating: "x", count: 300))\""), 422, "name"),
        (valid.replacingOccurrences(of: #""gflops": 20"#, with: #""gflops": -1"#), 422, "hardware.gflops"),
        (valid.replacingOccurrences(of: #""gflops": 20"#, with: #""gflops": 0"#), 422, "hardware.gflops"),
        (valid.replacingOccurrences(of: #""gflops": 20"#, with: #""gflops": 1e300"#), 422, "hardware.gflops"),
        (valid.replacingOccurrences(of: #""memory_mb": 4096"#, with: #""memory_mb": 99999999999999"#), 422, "hardware.memory_mb"),
        (valid.replacingOccurrences(of: #""memory_mb": 4096"#, with: #""memory_mb": 1.5"#), 422, "hardware.memory_mb"),
        (valid.replacingOccurrences(of: #""latency_budget_ms": 30"#, with: #""latency_budget_ms": -5"#), 422, "constraints.latency_budget_ms"),
        (valid.replacingOccurrences(of: #""memory_budget_mb": 256"#, with: #""memory_budget_mb": 0"#), 422, "constraints.memory_budget_mb"),
        (valid.replacingOccurrences(of: "256}", with: #"256, "energy_budget_mj": -1}"#), 422, "constraints.energy_budget_mj"),
        (valid.replacingOccurrences(of: "jetson-tx2", with: "Jetson TX2"), 422, "hardware.class"),
        (valid.replacingOccurrences(of: "jetson-tx2", with: "jetson--tx2"), 422, "hardware.class"),
        (valid.replacingOccurrences(of: "jetson-tx2", with: ""), 422, "hardware.class"),
        (valid.replacingOccurrences(of: #""class": "jetson-tx2""#, with: #""class": 3"#), 422, "hardware.class"),
        (valid.replacingOccurrences(of: "}}", with: #"}, "labels": {"site": 3}}"#), 422, "labels.site"),
        (valid.replacingOccurrences(of: "}}", with: #"}, "labels": ["site"]}"#), 422, "labels"),
        (valid.replacingOccurrences(of: "}}", with: #"}, "labels": {"bad key!": "x"}}"#), 422, "labels.bad key!"),
        (valid.replacingOccurrences(of: "}}", with: #"}, "labels": {"site": "a,b"}}"#), 422, "labels.site"),
        (valid.replacingOccurrences(of: "}}", with: #"}, "context": {"battery_pct": 101}}"#), 422, "context.battery_pct"),
        (valid.replacingOccurrences(of: "}}", with: #"}, "context": {"rtt_ms": -1}}"#), 422, "context.rtt_ms"),
        (valid.replacingOccurrences(of: #""hardware": {"#, with: #""hardware": 5, "x": {"#), 422, "hardware"),
    ]

    @Test func registrationBadBodies() async throws {
        let before = try c.count("devices")
        for (body, status, field) in Self.cases {
            let r = try await c.request("POST", "/v1/devices", json: body)
            #expect(r.status == status, "body \(body.prefix(120)) -> \(r.status) \(r.text)")
            #expect(r.isProblem, "not problem+json: \(r.headers)")
            let obj = try #require(r.object)
            for key in ["type", "title", "status", "detail", "code", "request_id"] {
                #expect(obj[key] != nil, "problem lacks \(key): \(r.text)")
            }
            #expect(obj["request_id"] as? String == r.headers["x-request-id"])
            if let field {
                #expect(r.problemFields.contains(field), "body \(body.prefix(120)) fields \(r.problemFields), wanted \(field)")
            }
        }
        #expect(try c.count("devices") == before)
        #expect(try c.count("idempotency_keys") == 0)
    }

    @Test func oversizedBodyIs413AndNothingStored() async throws {
        let big = Self.valid.replacingOccurrences(of: #""name": "cam""#,
                                                  with: "\"name\": \"cam\", \"pad\": \"\(String(repeating: "x", count: 1_100_000))\"")
        let r = try await c.request("POST", "/v1/devices", json: big)
        #expect(r.status == 413)
        #expect(r.isProblem)
        #expect(try c.count("devices") == 0)
    }

    @Test func pathParametersAndRouting() async throws {
        let notUUID = try await c.request("GET", "/v1/devices/not-a-uuid")
        #expect(notUUID.status == 400)
        #expect(notUUID.problemFields == ["id"])
        let patchNotUUID = try await c.request("PATCH", "/v1/devices/123", json: #"{"name": "x"}"#)
        #expect(patchNotUUID.status == 400)
        let missing = try await c.request("GET", "/v1/devices/\(UUID().uuidString)")
        #expect(missing.status == 404)
        #expect(missing.isProblem)
        let unknown = try await c.request("GET", "/v1/nothing-here")
        #expect(unknown.status == 404)
        #expect(unknown.isProblem)
        let wrongMethod = try await c.request("PUT", "/v1/devices", json: "{}")
        #expect(wrongMethod.status == 405)
        let allow = wrongMethod.headers["allow"] ?? ""
        #expect(allow.contains("GET") && allow.contains("POST"))
    }

    @Test func patchBadInputChangesNothing() async throws {
        let (id, _) = try await c.registerDevice(name: "stay")
        for (body, field) in [(#"{}"#, "body"), (#"{"name": ""}"#, "name"), (#"{"hardware": {"class": "x", "gflops": -2, "memory_mb": 1}}"#, "hardware.gflops"),
                              (#"{"labels": {"a": 1}}"#, "labels.a")] {
            let r = try await c.request("PATCH", "/v1/devices/\(id)", json: body)
            #expect(r.status == 422, "\(body) -> \(r.status) \(r.text)")
            #expect(r.problemFields.contains(field), "\(body): \(r.problemFields)")
        }
        let badIfMatch = try await c.request("PATCH", "/v1/devices/\(id)", json: #"{"name": "y"}"#, headers: ["If-Match": "garbage"])
        #expect(badIfMatch.status == 400)
        let mismatch = try await c.request("PATCH", "/v1/devices/\(id)", json: #"{"name": "y"}"#, headers: ["If-Match": "\"v7\""])
        #expect(mismatch.status == 412)
        let device = try await c.request("GET", "/v1/devices/\(id)")
        #expect(device.object?["name"] as? String == "stay")
        #expect(device.object?["version"] as? Int == 1)
    }

    @Test func badIdempotencyKeyIsRefused() async throws {
        let r = try await c.request("POST", "/v1/devices", json: Self.valid, headers: ["Idempotency-Key": String(repeating: "k", count: 300)])
        #expect(r.status == 400)
        #expect(r.problemFields == ["Idempotency-Key"])
        #expect(try c.count("devices") == 0)
    }
}
