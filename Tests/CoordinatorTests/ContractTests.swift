import BundledResources
import EdgeRuntime
import Foundation
import Testing
import TestSupport

/// openapi/openapi.yaml is the contract: every served route is in it and every path in it is served.
@Suite struct ContractTests {
    @Test func routesAndSpecAreEqual() async throws {
        let c = try TestCoordinator()
        let served = Set(c.app.routes.map { "\($0.method) \($0.pattern)" })
        let spec = try Self.specOperations()
        #expect(!spec.isEmpty)
        #expect(served.subtracting(spec).sorted() == [], "served but not in openapi.yaml")
        #expect(spec.subtracting(served).sorted() == [], "in openapi.yaml but not served")

        let r = try await c.request("GET", "/openapi.yaml", token: nil)
        #expect(r.status == 200)
        #expect(r.text.hasPrefix("openapi: 3.1"))
        #expect(try await c.request("GET", "/healthz", token: nil).status == 200)
        #expect(try await c.request("GET", "/readyz", token: nil).status == 200)
        let metrics = try await c.request("GET", "/metrics", token: nil)
        #expect(metrics.text.contains("fleetadapt_http_requests_total{method=\"GET\",route=\"/openapi.yaml\",status=\"200\"} 1"))
    }

    /// The query parameters compiled into the coordinator are the spec's (read here by an independent reader), and
    /// a request naming any other is refused with 400 `unknown_query_parameter` naming it, before its body is read
    /// and whatever its credential.
    @Test func unknownQueryParametersAreRefusedNamingThem() async throws {
        let spec = try OpenAPIOperations.queryParameters(BundledResourcesTests.repository.appendingPathComponent("openapi/openapi.yaml").path)
        #expect(spec.count == BundledResources.queryParameters.count)
        #expect(spec == BundledResources.queryParameters.mapValues(Set.init), "stale: run `python3 deploy/tools/bundle_resources.py`")
        #expect(spec["GET /v1/devices"] == ["limit", "after", "labels", "status"])
        #expect(spec["GET /v1/devices/{id}/model.onnx"] == ["part"])

        let c = try TestCoordinator()
        let misspelt = try await c.request("GET", "/v1/devices?name=robot-1")
        #expect(misspelt.status == 400 && misspelt.text.contains("unknown_query_parameter"), "\(misspelt.text)")
        #expect(misspelt.problemFields == ["name"])
        let two = try await c.request("GET", "/v1/devices?limit=2&zz=1&aa=2")
        #expect(two.problemFields == ["aa", "zz"], "\(two.text)")
        #expect(try await c.request("GET", "/v1/devices?limit=2&labels=site%3Dx").status == 200)
        #expect(try await c.request("GET", "/healthz?verbose=1", token: nil).status == 400)
        #expect(try await c.request("GET", "/healthz", token: nil).status == 200)
        let agent = try await c.request("GET", "/v1/agent/jobs/next?wait=0&timeout=5", token: "fad_nothing")
        #expect(agent.status == 400 && agent.problemFields == ["timeout"], "\(agent.text)")
        let post = try await c.request("POST", "/v1/devices?dry_run=true", json: AccessControlTests.registration)
        #expect(post.status == 400 && post.problemFields == ["dry_run"])
        #expect(try c.count("devices") == 0)
    }

    /// The edge runtime serves exactly what openapi/edge.yaml describes.
    @Test func edgeRoutesAndSpecAreEqual() throws {
        let edge = EdgeServer(configuration: EdgeConfiguration(coordinatorURL: "http://127.0.0.1:1", cacheDirectory: NSTemporaryDirectory()))
        let served = Set(edge.routes.map { "\($0.method) \($0.pattern)" })
        let spec = try Self.specOperations("openapi/edge.yaml")
        #expect(!spec.isEmpty)
        #expect(served == spec)
    }

    /// Every operation of both documents has an `operationId`, unique in its document, so generated clients get
    /// named functions (`listDevices`, not `get_v1_devices`), and tags, so their functions come grouped.
    @Test(arguments: ["openapi/openapi.yaml", "openapi/edge.yaml"])
    func everyOperationHasAUniqueOperationID(file: String) throws {
        let ids = try Self.operationIDs(file)
        #expect(ids.count >= 3)
        let missing = ids.filter { $0.value == nil }.map(\.key).sorted()
        #expect(missing == [], "operations without an operationId in \(file)")
        let named = ids.values.compactMap { $0 }
        #expect(Set(named).count == named.count, "operationIds repeated in \(file)")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let tagged = text.split(separator: "\n").filter { $0.hasPrefix("      tags: [") }.count
        #expect(tagged == ids.count, "operations without tags in \(file)")
    }

    /// The catalogue of problem codes (`x-problem-codes` under the Problem schema) lists exactly the codes the
    /// sources can answer: every `code: "…"` literal and every defaulted `code: String = "…"` in Sources/.
    @Test func problemCodeCatalogueMatchesTheSources() throws {
        let spec = try String(contentsOfFile: "openapi/openapi.yaml", encoding: .utf8)
        var documented: Set<String> = []
        var inCatalogue = false
        for line in spec.split(separator: "\n") {
            if line.hasPrefix("      x-problem-codes:") { inCatalogue = true; continue }
            guard inCatalogue else { continue }
            guard line.hasPrefix("        "), let colon = line.firstIndex(of: ":") else { break }
            documented.insert(line[..<colon].trimmingCharacters(in: .whitespaces))
        }
        #expect(documented.count > 20)

        var emitted: Set<String> = []
        let pattern = try Regex(#"code: (?:String = )?"([a-z_]+)""#)
        let files = FileManager.default.enumerator(atPath: "Sources")?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        #expect(!files.isEmpty)
        for file in files {
            let text = try String(contentsOfFile: "Sources/" + file, encoding: .utf8)
            for match in text.matches(of: pattern) {
                if let code = match.output[1].substring { emitted.insert(String(code)) }
            }
        }
        #expect(emitted.subtracting(documented).sorted() == [], "answered by the sources but missing from x-problem-codes")
        #expect(documented.subtracting(emitted).sorted() == [], "in x-problem-codes but never answered")
    }

    /// "METHOD /path" → its `operationId` (two-space path keys, four-space method keys, the six-space
    /// `operationId:` under the method), nil when it has none.
    static func operationIDs(_ file: String) throws -> [String: String?] {
        try OpenAPIOperations.operationIDs(file)
    }

    /// "METHOD /path" for every operation under `paths:`.
    static func specOperations(_ file: String = "openapi/openapi.yaml") throws -> Set<String> {
        Set(try operationIDs(file).keys)
    }
}
