import ElasticModel
import Foundation
import Testing

/// `fleetadapt model inspect` and `report` as a user runs them: the real executable on real files.
struct ModelCLITests {
    static var cli: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fleetadapt").path
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cli)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func write(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "fleetadapt-cli-\(UUID().uuidString).fap"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func inspectPrintsAVerifiedPackageAndRefusesBadOnes() throws {
        guard FileManager.default.fileExists(atPath: Self.cli) else {
            Issue.record("\(Self.cli) is missing: build the fleetadapt product before the tests")
            return
        }
        let bytes = try Fixture.built.package.encode()
        let good = try Self.write(bytes)
        let ok = try Self.run(["model", "inspect", good])
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains("combinations: 3125 (5 × 5 × 5 × 5 × 5)"))
        #expect(ok.output.contains("blocks.4  skip"))

        var tampered = bytes
        tampered[tampered.count - 1024 - 2000] ^= 0x10
        let bad = try Self.run(["model", "inspect", try Self.write(tampered)])
        #expect(bad.status != 0)
        #expect(bad.output.contains("hash mismatch") || bad.output.contains("padding"), "\(bad.output)")

        let truncated = try Self.run(["model", "inspect", try Self.write(Array(bytes.prefix(bytes.count / 2)))])
        #expect(truncated.status != 0)
        #expect(truncated.output.contains("truncated"), "\(truncated.output)")

        let large = try Self.run(["model", "inspect", good, "--max-bytes", "1000"])
        #expect(large.status != 0)
        #expect(large.output.contains("too large"), "\(large.output)")
    }

    @Test func reportWritesTheSpaceAndItsFrontier() throws {
        guard FileManager.default.fileExists(atPath: Self.cli) else { return }
        let file = try Self.write(try Fixture.built.package.encode())
        let dir = NSTemporaryDirectory() + "fleetadapt-report-\(UUID().uuidString)"
        let r = try Self.run(["model", "report", file, "--out-dir", dir])
        #expect(r.status == 0, "\(r.output)")
        let csv = try String(contentsOfFile: dir + "/space.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 3126)
        let svg = try String(contentsOfFile: dir + "/frontier.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("polyline"))
        #expect(r.output.contains("| 40 % ("))
    }
}
