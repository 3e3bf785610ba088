import EdgeRuntime
import Foundation
import Testing

/// `/metrics` of the real coordinator (and the edge server) parsed as Prometheus text: every sample belongs to
/// a family with HELP and TYPE, names carry their units, and the values move as a job is leased and reported.
@Suite struct PrometheusExpositionTests {
    struct Exposition {
        var help: Set<String> = []
        var types: [String: String] = [:]
        /// "name{labels}" → value.
        var samples: [String: Double] = [:]

        init(_ text: String) throws {
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# HELP ") {
                    help.insert(String(line.dropFirst(7).prefix { $0 != " " }))
                } else if line.hasPrefix("# TYPE ") {
                    let parts = line.dropFirst(7).split(separator: " ")
                    guard parts.count == 2, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]) else {
                        throw TestFailure("bad TYPE line: \(line)")
                    }
                    types[String(parts[0])] = String(parts[1])
                } else if !line.hasPrefix("#") {
                    guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                        throw TestFailure("bad sample: \(line)")
                    }
                    samples[String(line[..<space])] = value
                }
            }
        }

        static func family(of sample: String) -> String { String(sample.prefix { $0 != "{" }) }

        /// The family a sample belongs to (a histogram's _bucket/_sum/_count belong to it).
        func declaredFamily(of sample: String) -> String? {
            let name = Self.family(of: sample)
            if types[name] != nil { return name }
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                let base = String(name.dropLast(suffix.count))
                if types[base] == "histogram" || types[base] == "summary" { return base }
            }
            return nil
        }

        var families: Set<String> { Set(types.keys) }

        func sum(_ family: String, matching: String = "") -> Double {
            // ("x".contains("") is false: an empty filter must match every sample of the family.)
            samples.filter { Self.family(of: $0.key) == family && (matching.isEmpty || $0.key.contains(matching)) }.values.reduce(0, +)
        }

        func check() {
            for sample in samples.keys {
                let family = declaredFamily(of: sample)
                #expect(family != nil, "\(sample) has no TYPE")
                if let family { #expect(help.contains(family), "\(family) has no HELP") }
            }
            for (name, type) in types {
                if type == "counter" { #expect(name.hasSuffix("_total"), "counter \(name) ends in _total") }
                #expect(!name.hasSuffix("_ms") && !name.hasSuffix("_milliseconds"), "\(name) in base units")
            }
        }
    }

    static func scrape(_ c: TestCoordinator) async throws -> Exposition {
        let r = try await c.request("GET", "/metrics", token: nil)
        #expect(r.status == 200)
        #expect(r.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let e = try Exposition(r.text)
        e.check()
        return e
    }

    @Test func coordinatorExpositionParsesAndMovesWithAJob() async throws {
        let c = try TestCoordinator()
        let before = try await Self.scrape(c)
        for family in ["fleetadapt_build_info", "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                       "fleetadapt_jobs", "fleetadapt_campaigns", "fleetadapt_devices", "fleetadapt_long_polls_waiting",
                       "fleetadapt_db_pool_connections_in_use", "fleetadapt_db_pool_waits_total", "fleetadapt_db_pool_errors_total",
                       "fleetadapt_job_leases_total", "fleetadapt_job_results_total", "fleetadapt_http_requests_total",
                       "fleetadapt_http_request_duration_seconds", "fleetadapt_http_requests_in_flight", "fleetadapt_releases",
                       "fleetadapt_adapter_aggregations", "fleetadapt_replan_duration_seconds"] {
            #expect(before.families.contains(family), "missing \(family)")
        }
        #expect(before.types["fleetadapt_http_request_duration_seconds"] == "histogram")
        #expect(before.types["fleetadapt_replan_duration_seconds"] == "histogram")
        #expect((before.samples["process_resident_memory_bytes"] ?? 0) > 1_000_000)

        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "m-1", labels: ["fleet": "metrics"])
        #expect(try await c.request("POST", "/v1/domains", json: """
            {"name": "fog", "model_id": "\(model)", "selector": {"labels": {"fleet": "metrics"}},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 50},
             "job": {"loss": "tent", "steps": 20, "batch_size": 64, "timeout_s": 600, "max_attempts": 1}}
            """).status == 201)
        let leased = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: token)
        #expect(leased.status == 200, "\(leased.text)")
        let job = try #require(leased.object?["id"] as? String)
        let result = try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: token, json: """
            {"attempt": 1, "outcome": "failed", "error": "no data"}
            """)
        #expect(result.status < 300, "\(result.text)")
        // The lease is counted when its request completes, just after the answer was sent.
        var after = try await Self.scrape(c)
        let deadline = Date().addingTimeInterval(30)
        while after.sum("fleetadapt_job_results_total", matching: "accepted") < 1 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            after = try await Self.scrape(c)
        }
        #expect(after.sum("fleetadapt_job_results_total", matching: "accepted") == before.sum("fleetadapt_job_results_total", matching: "accepted") + 1)
        #expect(after.sum("fleetadapt_devices", matching: "status=\"active\"") >= 1)
        #expect(after.sum("fleetadapt_job_leases_total") == before.sum("fleetadapt_job_leases_total") + 1,
                "\(after.samples.filter { $0.key.contains("lease") || $0.key.contains("jobs/next") })")
        #expect(after.sum("fleetadapt_jobs", matching: "state=\"failed\"") == 1,
                "\(after.samples.filter { $0.key.hasPrefix("fleetadapt_jobs") || $0.key.hasPrefix("fleetadapt_campaigns") })")
        #expect(after.sum("fleetadapt_campaigns") >= 1)
        // Registering the device planned it: one more device-scoped re-plan observed.
        #expect(after.sum("fleetadapt_replan_duration_seconds_count", matching: "scope=\"device\"")
                >= before.sum("fleetadapt_replan_duration_seconds_count", matching: "scope=\"device\"") + 1)
        #expect(after.sum("fleetadapt_http_request_duration_seconds_count", matching: "route=\"/v1/agent/jobs/{id}/result\"") == 1)
        #expect(after.samples.keys.contains { $0.hasPrefix("fleetadapt_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/domains\"") })
    }

    static func edgeExposition() async throws -> Exposition {
        let edge = EdgeServer(configuration: EdgeConfiguration(coordinatorURL: "http://127.0.0.1:1", port: 0, cacheDirectory: NSTemporaryDirectory(), accessLog: false))
        try edge.start()
        defer { edge.shutdown() }
        _ = try await TestCoordinator.send("GET", url: "http://127.0.0.1:\(edge.port)/healthz", token: nil)
        var e = try Exposition("")
        let deadline = Date().addingTimeInterval(30)
        repeat {
            let r = try await TestCoordinator.send("GET", url: "http://127.0.0.1:\(edge.port)/metrics", token: nil)
            #expect(r.status == 200)
            e = try Exposition(r.text)
        } while e.sum("fleetadapt_edge_http_requests_total", matching: "/healthz") < 1 && Date() < deadline
        return e
    }

    @Test func edgeExpositionParses() async throws {
        let e = try await Self.edgeExposition()
        e.check()
        for family in ["fleetadapt_build_info", "process_resident_memory_bytes", "fleetadapt_edge_sessions",
                       "fleetadapt_edge_http_requests_total", "fleetadapt_edge_http_request_duration_seconds"] {
            #expect(e.families.contains(family), "missing \(family)")
        }
        #expect(e.sum("fleetadapt_edge_http_requests_total", matching: "route=\"/healthz\"") >= 1)
    }

    /// deploy/grafana/fleetadapt.json: every metric name in every panel's expression is one the coordinator or
    /// the edge server exposes.
    @Test func dashboardNamesOnlyExposedMetrics() async throws {
        let c = try TestCoordinator()
        let coordinator = try await Self.scrape(c)
        let edge = try await Self.edgeExposition()
        var exposed: Set<String> = []
        for e in [coordinator, edge] {
            for (name, type) in e.types {
                exposed.insert(name)
                if type == "histogram" { exposed.formUnion([name + "_bucket", name + "_sum", name + "_count"]) }
            }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("deploy/grafana/fleetadapt.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(panels.count >= 8)
        let functions: Set<String> = ["sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "le", "max", "min",
                                      "avg", "count", "topk", "on", "ignoring", "group_left", "clamp_min", "time", "deriv", "delta"]
        var expressions = 0
        for panel in panels {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expr = try #require(target["expr"] as? String)
                expressions += 1
                // Identifiers outside label matchers ({...}) and strings; those followed by "(" are functions.
                var outside = ""
                var depth = 0
                var quoted = false
                for ch in expr {
                    if ch == "\"" { quoted.toggle(); continue }
                    if quoted { continue }
                    if ch == "{" { depth += 1; outside.append(" "); continue }
                    if ch == "}" { depth -= 1; continue }
                    outside.append(depth == 0 ? ch : " ")
                }
                let withoutGroupings = outside.replacingOccurrences(of: #"(by|without|on|ignoring)\s*\([^)]*\)"#, with: " ", options: .regularExpression)
                        .replacingOccurrences(of: #"\[[^\]]*\]"#, with: " ", options: .regularExpression)
                let names = withoutGroupings.split { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
                    .map(String.init).filter { $0.first?.isLetter == true && !functions.contains($0) }
                #expect(!names.isEmpty, "\(expr) names no metric")
                for name in names { #expect(exposed.contains(name), "\(panel["title"] ?? "?"): \(name) in \(expr) is not exposed") }
            }
        }
        #expect(expressions >= 10)
    }
}
