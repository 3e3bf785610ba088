import BundledResources
import Foundation
import Testing
import TestSupport

/// Every route takes only the query parameters its operation in openapi.yaml declares; any other is a 400
/// `unknown_query_parameter` naming it, before the credential is looked at and before anything is changed.
@Suite struct QueryParameterTests {
    /// A path of the pattern with each `{name}` a fresh UUID.
    static func concrete(_ pattern: String) -> String {
        pattern.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix("{") ? UUID().uuidString.lowercased() : String(segment)
        }.joined(separator: "/")
    }

    /// Each served route refuses a parameter its operation does not declare, and accepts (gets past the check
    /// with) every parameter it declares. The compiled-in allow-list covers the document's operations.
    @Test func everyRouteRefusesParametersItsOperationDoesNotDeclare() async throws {
        let c = try TestCoordinator()
        let spec = try OpenAPIOperations.operationIDs("openapi/openapi.yaml")
        let allowed = BundledResources.queryParameters.mapValues(Set.init)
        #expect(Set(allowed.keys) == Set(spec.keys))
        #expect(allowed["GET /v1/devices"] == ["limit", "after", "labels", "status"])
        #expect(allowed["GET /v1/audit"] == ["limit", "after", "actor", "route", "since", "until", "status"])
        #expect(allowed["GET /v1/agent/jobs/next"] == ["wait"])
        #expect(allowed["POST /v1/models"] == ["name", "tags"])
        #expect(allowed["GET /v1/devices/{id}"] == [])
        var checked = 0
        for route in c.app.routes {
            let path = Self.concrete(route.pattern)
            let r = try await c.request(route.method, path + "?zz_unknown=1&limt=5", token: nil)
            #expect(r.status == 400 && r.problemCode == "unknown_query_parameter", "\(route.method) \(route.pattern): \(r.status) \(r.text)")
            #expect(r.problemFields == ["limt", "zz_unknown"], "\(route.method) \(route.pattern): \(r.problemFields)")
            let declared = allowed["\(route.method) \(route.pattern)"] ?? []
            if !declared.isEmpty {
                let query = declared.sorted().map { "\($0)=x" }.joined(separator: "&")
                let ok = try await c.request(route.method, path + "?" + query, token: nil)
                #expect(ok.problemCode != "unknown_query_parameter", "\(route.method) \(route.pattern) refused its own parameters: \(ok.text)")
            }
            checked += 1
        }
        #expect(checked >= 40)
        #expect(try c.count("audit_log WHERE status = 400") == 0)
    }

    /// What a caller sees: a misspelt filter is named, a correct one works, and nothing was created by a refused POST.
    @Test func aMisspeltParameterIsNamedAndTheCorrectOneWorks() async throws {
        let c = try TestCoordinator()
        _ = try await c.registerDevice(name: "cam-1", labels: ["site": "berlin"])
        let bad = try await c.request("GET", "/v1/devices?label=site=berlin")
        #expect(bad.status == 400 && bad.isProblem && bad.problemCode == "unknown_query_parameter")
        #expect(bad.problemFields == ["label"])
        #expect(bad.text.contains("labels"), "the answer lists what the operation takes: \(bad.text)")
        let good = try await c.request("GET", "/v1/devices?labels=site=berlin&limit=10")
        #expect(good.status == 200)
        let before = try c.count("devices")
        let post = try await c.request("POST", "/v1/devices?dry_run=1", json: """
            {"name": "cam-2", "hardware": {"class": "jetson-tx2", "gflops": 20, "memory_mb": 4096},
             "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}}
            """)
        #expect(post.status == 400 && post.problemFields == ["dry_run"])
        #expect(try c.count("devices") == before)
    }
}
