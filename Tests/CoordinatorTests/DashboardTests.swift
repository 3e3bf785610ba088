import ElasticModel
import Foundation
import HTTPServer
import Learning
import Testing
import TestSupport

/// The web dashboard at `/ui`: its files and headers over real HTTP, the plot data it draws, and the page itself in
/// a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven by selenium from
/// Tests/CoordinatorTests/DashboardDriver/dashboard_driver.py) against a real coordinator with a real agent.
@Suite(.serialized) struct DashboardTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// A small elastic package (3 positions × 5 variants), built once per test process with real training.
    static let package: ElasticPackage = {
        try! SmallPackage(
            architecture: .resnet(widths: [8, 16, 24], blocksPerStage: [1, 1, 1]), name: "fmnist-dashboard", description: "dashboard test",
            trainImages: 1500, recipe: BaseModelRecipe(steps: 120, warmupSteps: 10, seed: 2), distillImages: 128, distillationSteps: 10,
            calibrationCombinations: 2, validationCombinations: 2, validationImages: 100).build().package
    }()

    static func publish(_ c: TestCoordinator) async throws -> String {
        let r = try await c.request("POST", "/v1/models?name=fmnist-dashboard", body: Data(try package.encode()))
        guard r.status == 201 || r.status == 200, let id = r.object?["id"] as? String else { throw TestFailure("publish: \(r.status) \(r.text)") }
        return id
    }

    @Test func everyFileIsServedWithItsTypeTheSecurityHeadersAndAnEntityTag() async throws {
        let c = try TestCoordinator()
        let expected = ["/ui": "text/html; charset=utf-8", "/ui/index.html": "text/html; charset=utf-8",
                        "/ui/dashboard.js": "text/javascript; charset=utf-8", "/ui/plot.js": "text/javascript; charset=utf-8",
                        "/ui/dashboard.css": "text/css; charset=utf-8"]
        for (path, type) in expected.sorted(by: { $0.key < $1.key }) {
            // No credential: the files hold no data.
            let r = try await c.request("GET", path, token: nil)
            #expect(r.status == 200, "\(path): \(r.status)")
            #expect(r.headers["content-type"] == type, "\(path)")
            #expect(r.headers["content-security-policy"] == Self.csp, "\(path)")
            #expect(r.headers["x-content-type-options"] == "nosniff", "\(path)")
            #expect(r.headers["referrer-policy"] == "no-referrer", "\(path)")
            let etag = try #require(r.headers["etag"], "\(path) has no ETag")
            let again = try await c.request("GET", path, token: nil, headers: ["If-None-Match": etag])
            #expect(again.status == 304, "\(path)")
            #expect(again.body.isEmpty)
            let other = try await c.request("GET", path, token: nil, headers: ["If-None-Match": "\"something-else\""])
            #expect(other.status == 200 && other.body == r.body, "\(path)")
        }
        // The page loads only files of this origin and carries no inline script or style.
        let page = try await c.request("GET", "/ui", token: nil).text
        #expect(page.contains("<script src=\"/ui/dashboard.js\" defer></script>"))
        #expect(!page.contains("style=") && !page.contains("<style") && !page.contains("onclick") && !page.contains("<script>"))
        let script = try await c.request("GET", "/ui/dashboard.js", token: nil).text
        for sink in [".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage"] {
            #expect(!script.contains(sink), "dashboard.js uses \(sink)")
        }
        #expect(script.contains("sessionStorage"))
    }

    /// Unknown files are 404 problems and nothing leaves the dashboard's folder, whatever the encoding.
    @Test func unknownFilesAndTraversalAreRefused() async throws {
        let c = try TestCoordinator()
        let unknown = try await c.request("GET", "/ui/nope.html", token: nil)
        #expect(unknown.status == 404 && unknown.isProblem && unknown.problemCode == "not_found")
        let paths = ["/ui/../openapi.yaml", "/ui/..", "/ui/%2e%2e/openapi.yaml", "/ui/%2e%2e%2fopenapi.yaml", "/ui/..%2fopenapi.yaml",
                     "/ui/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/ui/..%5copenapi.yaml", "/ui/.%2e/openapi.yaml", "/ui/%00", "/ui/index.html%00.js",
                     "/ui/./index.html", "/ui/index.html/", "/ui/%252e%252e%252fopenapi.yaml", "/ui//etc/passwd", "/ui/.env"]
        for path in paths {
            let r = try RawHTTPClient.exchange(port: c.app.port, raw: Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
            #expect([400, 404].contains(r.status), "\(path): \(r.status)")
            #expect(!r.text.contains("openapi: 3.1") && !r.text.contains("root:") && !r.text.contains("<html"), "\(path) served a file")
        }
        let traversal = try RawHTTPClient.exchange(port: c.app.port, raw: Array("GET /ui/..%2fopenapi.yaml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(traversal.status == 400, "\(traversal.text)")
        let post = try await c.request("POST", "/ui", token: nil, json: "{}")
        #expect(post.status == 405)
    }

    /// The plot data is the scaling report's: its frontier, and its axes with their round ticks and labels
    /// (`PlotAxis`), accuracy inside [0, 1]; the route is the viewer's and refuses what it cannot plot.
    @Test func theScalingPlotDataIsTheReportsAxesAndFrontier() async throws {
        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        let r = try await c.request("GET", "/v1/models/\(model)/scaling")
        #expect(r.status == 200, "\(r.text)")
        let plot = try #require(r.object)
        let report = ScalingReport(manifest: Self.package.manifest)
        let axes = try #require(plot["axes"] as? [String: [String: Any]])
        func labels(_ name: String) -> [String] { ((axes[name]?["ticks"] as? [[String: Any]]) ?? []).compactMap { $0["label"] as? String } }
        #expect(labels("latency_ms") == report.axes.latency.ticks.map(report.axes.latency.label))
        #expect(labels("accuracy") == report.axes.accuracy.ticks.map(report.axes.accuracy.label))
        #expect(labels("latency_ms").count >= 3 && labels("accuracy").count >= 3)
        let accuracy = try #require(axes["accuracy"])
        #expect((accuracy["lower"] as? Double ?? -1) >= 0 && (accuracy["upper"] as? Double ?? 2) <= 1)
        #expect(plot["combinations"] as? Int == 125)
        #expect((plot["points"] as? [Any])?.count == 125)
        let frontier = ((plot["frontier"] as? [[String: Any]]) ?? []).compactMap { $0["variants"] as? String }
        #expect(frontier == report.frontier.map { report.ids($0.choice) })
        let sizes = ((plot["size_frontier"] as? [[String: Any]]) ?? []).compactMap { $0["size_mb"] as? Double }
        #expect(!sizes.isEmpty && sizes == sizes.sorted())

        #expect(try await c.request("GET", "/v1/models/\(model)/scaling", token: nil).status == 401)
        #expect(try await c.request("GET", "/v1/models/\(UUID().uuidString.lowercased())/scaling").status == 404)
        let bad = try await c.request("GET", "/v1/models/not-a-uuid/scaling")
        #expect(bad.status == 400 && bad.problemFields == ["id"])
        // A model row that is not an elastic package (no blocks) has nothing to plot.
        _ = try c.sql("INSERT INTO model_blobs (sha256, size_bytes, content, created_at) VALUES (sha256('x'::bytea), 1, 'x'::bytea, now())")
        let id = UUID().uuidString.lowercased()
        _ = try c.sql("""
            INSERT INTO models (id, name, package_sha256, size_bytes, manifest, combination_count, created_at)
            VALUES (\(UUID(uuidString: id)!), 'plain', sha256('x'::bytea), 1, '{"name": "plain"}'::jsonb, 1, now())
            """)
        let none = try await c.request("GET", "/v1/models/\(id)/scaling")
        #expect(none.status == 409 && none.problemCode == "plot_unavailable", "\(none.text)")
    }

    /// The operator's walk through the dashboard in a real headless Chromium: sign in, find the registered devices
    /// (filters, paging), watch a running campaign progress while a real agent runs its job, read the device's
    /// adaptation, the models page's plot and the audit log; every value a device sent is shown as text (a label
    /// holding an `<img onerror>` runs nothing), and the console reports no Content-Security-Policy violation.
    @Test func anOperatorSignsInAndWatchesACampaignInARealChromium() async throws {
        let chromium = "/usr/bin/chromium", chromedriver = "/usr/bin/chromedriver"
        let python = Self.repository.appendingPathComponent(".build/venv-ui/bin/python").path
        for (path, what) in [(chromium, "chromium (apt-get install chromium chromium-driver)"),
                             (chromedriver, "chromedriver (apt-get install chromium-driver)"),
                             (python, "the selenium virtualenv .build/venv-ui (deploy/test.sh creates it)")] {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                Issue.record("The dashboard test needs \(what): \(path) is missing.")
                return
            }
        }
        let check = try ChildProcess.run([python, "-c", "import selenium; print(selenium.__version__)"])
        guard check.status == 0 else {
            Issue.record("selenium is not importable from \(python): \(check.output)")
            return
        }

        let c = try TestCoordinator()
        let model = try await Self.publish(c)
        let xss = "<img src=x onerror=alert(1)>"
        let agentDevice = try await c.registerDevice(name: "cam-agent", labels: ["fleet": "ui", "role": "agent"])
        var names = ["cam-agent"]
        for i in 1...3 {
            _ = try await c.registerDevice(name: "cam-\(i)", labels: ["fleet": "ui", "site": i == 1 ? "berlin" : "paris"])
            names.append("cam-\(i)")
        }
        // A label value cannot hold '=' or ',' (the label syntax), so the <img onerror> goes into the name and the
        // label carries a <script>.
        let refused = try await c.request("POST", "/v1/devices", json: """
            {"name": "x", "hardware": {"class": "jetson-tx2", "gflops": 20, "memory_mb": 4096},
             "constraints": {"latency_budget_ms": 30, "memory_budget_mb": 256}, "labels": {"note": "\(xss)"}}
            """)
        #expect(refused.status == 422 && refused.problemFields == ["labels.note"], "\(refused.text)")
        let script = "<script>alert(2)</script>"
        let xssDevice = try await c.registerDevice(name: xss, labels: ["fleet": "other", "note": script])
        names.append(xss)

        let created = try await c.request("POST", "/v1/domains", json: """
            {"name": "contrast-ui", "model_id": "\(model)", "selector": {"device_ids": ["\(agentDevice.id)"]},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 50},
             "job": {"loss": "shot-im", "steps": 20, "timeout_s": 600, "max_attempts": 2, "batch_size": 32, "learning_rate": 0.002}}
            """)
        #expect(created.status == 201, "\(created.text)")
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)

        let work = NSTemporaryDirectory() + "fleetadapt-dashboard-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // Secrets reach the driver and the agent in files only readable by this user, never in arguments or environments.
        func secret(_ name: String, _ value: String) throws -> String {
            let path = work + "/" + name
            guard FileManager.default.createFile(atPath: path, contents: Data(value.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw TestFailure("cannot write \(path)")
            }
            return path
        }
        let keyFile = try secret("admin-key", TestCoordinator.adminKey)
        let tokenFile = try secret("device-token", agentDevice.token)
        let data = work + "/data"
        let clean = try FashionMNIST.load(split: .test).subset(0..<200)
        try LocalDataset.write(try Corruption.contrast.apply(to: clean, severity: 4, seed: 5, firstIndex: 0),
                               metadata: ["corruption": "contrast", "severity": "4"], to: data)
        let agent = [try BuiltProducts.path("fleetadapt-agent"), "--coordinator", c.baseURL, "--token-file", tokenFile,
                     "--data-dir", data, "--cache-dir", work + "/cache", "--poll-wait", "2", "--max-jobs", "1"]
        let report = ScalingReport(manifest: Self.package.manifest)
        let screenshots = Self.repository.appendingPathComponent(".build/ui-screenshots").path
        let config: [String: Any] = [
            "base_url": c.baseURL, "key_file": keyFile, "screenshot_dir": screenshots, "chromium": chromium,
            "chromedriver": chromedriver, "device_names": names, "xss_label": "note=\(script)", "xss_device_id": xssDevice.id,
            "fleet_ui_count": 4, "campaign_id": campaign, "agent_device_id": agentDevice.id, "agent_argv": agent,
            "agent_log": work + "/agent.log", "model_id": model, "timeout_s": 240,
            "latency_tick_labels": report.axes.latency.ticks.map(report.axes.latency.label),
            "accuracy_tick_labels": report.axes.accuracy.ticks.map(report.axes.accuracy.label),
        ]
        let configFile = work + "/driver.json"
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: configFile))
        let driver = Self.repository.appendingPathComponent("Tests/CoordinatorTests/DashboardDriver/dashboard_driver.py").path
        let run = try await Task.detached { try ChildProcess.run([python, driver, configFile]) }.value
        print(run.output)
        #expect(run.status == 0, "the dashboard driver failed:\n\(run.output)")
        #expect(run.output.contains("DASHBOARD OK"))
        let pngs = try FileManager.default.contentsOfDirectory(atPath: screenshots).filter { $0.hasSuffix(".png") }
        #expect(pngs.count >= 8, "\(pngs)")
        for name in pngs {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: screenshots + "/" + name))
            #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(name) is not a PNG")
        }
        // What the page showed came from the API: the job the agent ran is done.
        let view = try await c.request("GET", "/v1/campaigns/\(campaign)")
        #expect((view.object?["progress"] as? NSNumber)?.doubleValue == 1, "\(view.text)")
    }
}
