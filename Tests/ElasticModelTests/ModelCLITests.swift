import ElasticModel
import Foundation
import Testing
import TestSupport

/// `fleetadapt model inspect` and `report` as a user runs them: the real executable on real files.
struct ModelCLITests {
    /// Runs `fleetadapt`; a missing binary throws (the test fails saying so), it never passes quietly.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ChildProcess.run([try BuiltProducts.path("fleetadapt")] + arguments)
    }

    static func write(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "fleetadapt-cli-\(UUID().uuidString).fap"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func inspectPrintsAVerifiedPackageAndRefusesBadOnes() throws {
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

/// The CLI's options parse into typed values: a wrong value is refused before anything runs, naming the valid ones.
struct CLIOptionTests {
    @Test func aMissingProductIsAnErrorThatSaysHowToBuildIt() throws {
        #expect(FileManager.default.isExecutableFile(atPath: try BuiltProducts.path("fleetadapt")))
        do {
            _ = try BuiltProducts.path("fleetadapt-no-such-product")
            Issue.record("a missing product was found")
        } catch let missing as BuiltProducts.Missing {
            #expect(missing.description.contains("fleetadapt-no-such-product") && missing.description.contains("swift build --build-tests"))
        }
    }

    @Test func enumOptionsRefuseUnknownValuesAndListTheValidOnes() throws {
        let corruption = try ModelCLITests.run(["data", "make-domain", "--corruption", "smoke", "--out", NSTemporaryDirectory() + "never"])
        #expect(corruption.status != 0)
        #expect(corruption.output.contains("smoke") && corruption.output.contains("fog"), "\(corruption.output)")
        let loss = try ModelCLITests.run(["demo", "--loss", "entropy", "--agents", "0"])
        #expect(loss.status != 0)
        #expect(loss.output.contains("shot-im"), "\(loss.output)")
        let widths = try ModelCLITests.run(["model", "build", "--out", "/tmp/never.fap", "--widths", "8,x,32", "--train-steps", "0"])
        #expect(widths.status != 0)
        #expect(widths.output.contains("--widths"), "\(widths.output)")
        let shape = try ModelCLITests.run(["model", "build", "--out", "/tmp/never.fap", "--widths", "8,16", "--blocks", "1,2,2"])
        #expect(shape.status != 0)
        #expect(shape.output.contains("same number"), "\(shape.output)")
        let sparsities = try ModelCLITests.run(["model", "build", "--out", "/tmp/never.fap", "--sparsities", "0.25,0.5", "--train-steps", "0"])
        #expect(sparsities.status != 0)
        #expect(sparsities.output.contains("--sparsities"), "\(sparsities.output)")
        let severity = try ModelCLITests.run(["bench", "adapt", "--package", "/tmp/never.fap", "--severity", "9"])
        #expect(severity.status != 0)
        #expect(severity.output.contains("severity must be 1–5"), "\(severity.output)")
    }

    /// The demo script and the README call these flags; their spelling and defaults stay.
    @Test func sharedOptionGroupsKeepEveryFlag() throws {
        /// The help text with its line wrapping undone.
        func help(_ arguments: [String]) throws -> String {
            let r = try ModelCLITests.run(arguments + ["--help"])
            #expect(r.status == 0, "\(r.output)")
            return r.output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        }
        let demo = try help(["demo"])
        for flag in ["--agents", "--corruption", "--severity", "--steps", "--loss", "--work-dir", "--port", "--edge-port"] {
            #expect(demo.contains(flag), "demo --help lacks \(flag)")
        }
        for value in ["default: fog)", "default: shot-im)", "(default: 4)", "(default: 40)"] {
            #expect(demo.contains(value), "demo --help lacks \(value): \(demo)")
        }
        let build = try help(["model", "build"])
        for value in ["(default: 16,32,64)", "(default: 1,2,2)", "(default: 0,0.25,0.5,0.75)", "default: parallel)", "default: resnet)"] {
            #expect(build.contains(value), "model build --help lacks \(value): \(build)")
        }
        let adapt = try help(["bench", "adapt"])
        #expect(adapt.contains("--shared-schedule") && adapt.contains("default: sampled)"), "\(adapt)")
        #expect(try help(["model", "train-base"]).contains("--widths <widths>"))
    }
}
