import BundledResources
import Foundation
import Testing
import TestSupport

/// The migrations, the OpenAPI document and the dashboard's files are compiled into the coordinator
/// (Sources/BundledResources, written by deploy/tools/bundle_resources.py), so a binary copied anywhere carries the
/// schema it was built for.
@Suite struct BundledResourcesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func theCompiledInFilesEqualTheSources() throws {
        let directory = Self.repository.appendingPathComponent("migrations")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        let stale = "Sources/BundledResources is stale: run `python3 deploy/tools/bundle_resources.py`"
        #expect(BundledResources.migrations.map(\.name) == names, "\(stale)")
        for (name, sql) in BundledResources.migrations where names.contains(name) {
            let file = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            #expect(sql == file, "\(name) differs: \(stale)")
        }
        let document = try String(contentsOf: Self.repository.appendingPathComponent("openapi/openapi.yaml"), encoding: .utf8)
        #expect(BundledResources.openAPIDocument == document, "openapi/openapi.yaml differs: \(stale)")
        let ui = Self.repository.appendingPathComponent("Sources/CoordinatorHTTP/UI")
        let uiNames = try FileManager.default.contentsOfDirectory(atPath: ui.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(BundledResources.dashboardFiles.map(\.name) == uiNames, "\(stale)")
        for (name, text) in BundledResources.dashboardFiles where uiNames.contains(name) {
            #expect(text == (try String(contentsOf: ui.appendingPathComponent(name), encoding: .utf8)), "UI/\(name) differs: \(stale)")
        }
    }

    /// The failure users met: a coordinator copied out of the build tree stopped with "cannot read the migrations
    /// directory". Copied into an empty directory and run from there, with no FLEETADAPT_HOME, it migrates its
    /// embedded database with every migration.
    @Test func aRelocatedCoordinatorMigratesWithItsCompiledInSchema() throws {
        let root = NSTemporaryDirectory() + "fleetadapt-relocated-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let copy = root + "/bin/fleetadapt-coordinator"
        try FileManager.default.copyItem(atPath: try BuiltProducts.path("fleetadapt-coordinator"), toPath: copy)
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": root]
        environment["TMPDIR"] = ProcessInfo.processInfo.environment["TMPDIR"]
        // A child that another test forks while the copy's file is still open for writing inherits that descriptor
        // until it execs; starting the copy then fails with ETXTBSY ("Text file busy") for a moment. Retry that only.
        var attempt = 0
        func start() throws -> (status: Int32, output: String) {
            do { return try ChildProcess.run([copy, "migrate", "--data-dir", root + "/data"], environment: environment, directory: root) } catch {
                let busy = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.code == Int(ETXTBSY)
                attempt += 1
                guard busy, attempt < 40 else { throw error }
                Thread.sleep(forTimeInterval: 0.25)
                return try start()
            }
        }
        let run = try start()
        #expect(run.status == 0, "\(run.output)")
        for (name, _) in BundledResources.migrations {
            #expect(run.output.contains(name), "\(name) not applied: \(run.output)")
        }
    }
}
