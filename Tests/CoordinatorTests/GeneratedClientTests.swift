import Foundation
import Testing
import TestSupport

/// The OpenAPI document is usable by a client generator: openapi-python-client (pinned, in the virtualenv
/// .build/venv-openapi that deploy/test.sh creates) generates a client from openapi/openapi.yaml without a warning,
/// and a short operator scenario with that client runs against a real coordinator (GeneratedClient/scenario.py).
@Suite struct GeneratedClientTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let venv = repository.appendingPathComponent(".build/venv-openapi").path
    static let fixtures = repository.appendingPathComponent("Tests/CoordinatorTests/GeneratedClient").path

    @Test func aClientGeneratedFromTheSpecRunsAnOperatorScenario() async throws {
        let generator = Self.venv + "/bin/openapi-python-client", python = Self.venv + "/bin/python"
        guard FileManager.default.isExecutableFile(atPath: generator), FileManager.default.isExecutableFile(atPath: python) else {
            throw TestFailure("\(generator) is missing: deploy/test.sh creates the virtualenv .build/venv-openapi (openapi-python-client from PyPI)")
        }
        let work = NSTemporaryDirectory() + "fleetadapt-generated-client-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // Only what the tools need: the virtualenv first on PATH (the generator formats its output with its ruff), a
        // throwaway HOME; nothing of this process's environment, and never the key.
        let environment = ["PATH": Self.venv + "/bin:/usr/bin:/bin", "HOME": work, "PYTHONPATH": work, "PYTHONDONTWRITEBYTECODE": "1"]

        let generated = try ChildProcess.run(
            [generator, "generate", "--path", Self.repository.appendingPathComponent("openapi/openapi.yaml").path, "--output-path",
             work + "/fleetadapt_client", "--meta", "none", "--config", Self.fixtures + "/generator.yaml"],
            environment: environment, directory: work)
        #expect(generated.status == 0, "\(generated.output)")
        // Every schema and operation made it into the client: the generator warns about anything it had to leave out.
        for marker in ["Warning", "WARNING", "Unable to process", "will not be generated", "ruff is not in PATH"] {
            #expect(!generated.output.contains(marker), "openapi-python-client: \(generated.output)")
        }
        let operations = try FileManager.default.subpathsOfDirectory(atPath: work + "/fleetadapt_client/api").filter { $0.hasSuffix(".py") && !$0.hasSuffix("__init__.py") }
        #expect(operations.count >= 60, "\(operations.count) operations generated: \(operations.sorted())")
        #expect(operations.contains("triggers/create_trigger.py") && operations.contains("devices/list_devices.py"), "\(operations.sorted())")

        let c = try TestCoordinator()
        let keyFile = work + "/admin-key"
        guard FileManager.default.createFile(atPath: keyFile, contents: Data(TestCoordinator.adminKey.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TestFailure("cannot write \(keyFile)")
        }
        let argv = [python, Self.fixtures + "/scenario.py", c.baseURL, keyFile, FleetAdaptationTests.baseModel]
        let run = try await Task.detached { try ChildProcess.run(argv, environment: environment, directory: work) }.value
        #expect(run.status == 0, "the scenario failed:\n\(run.output)")
        #expect(!run.output.contains(TestCoordinator.adminKey))
        let last = try #require(run.output.split(separator: "\n").last.map(String.init))
        let result = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "\(run.output)")

        // What the scenario did is what the coordinator holds.
        let devices = try #require(result["devices"] as? [String])
        #expect(devices.count == 3)
        let berlin = try await c.request("GET", "/v1/devices?labels=fleet=python,site=berlin")
        let listed = ((berlin.object?["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        #expect(Set(listed) == Set(devices.prefix(2)) && listed.count == 2, "\(berlin.text)")
        let campaign = try #require(result["campaign"] as? String)
        let view = try await c.request("GET", "/v1/campaigns/\(campaign)")
        #expect(view.status == 200 && (view.object?["target_count"] as? Int) == 2, "\(view.text)")
        let model = try #require(result["model"] as? String)
        #expect(try await c.request("GET", "/v1/models/\(model)").status == 200)
        #expect((result["codes"] as? [String]) == ["invalid_parameter", "validation_failed"], "\(run.output)")
    }
}
