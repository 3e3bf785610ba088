import ElasticModel
import Foundation
import Learning
import Testing

struct PackageTests {
    @Test func roundTripIsExact() throws {
        let package = Fixture.built.package
        let bytes = try package.encode()
        let decoded = try ElasticPackage.decode(bytes)
        #expect(decoded.tensors == package.tensors)
        var expected = package.manifest
        expected.blobs = decoded.manifest.blobs
        #expect(decoded.manifest == expected)
        #expect(try decoded.encode() == bytes, "encoding is deterministic")
        // The rebuilt network computes what the built one did, for any combination.
        let a = try package.network(), b = try decoded.network()
        let x = Fixture.built.validation.tensor(Array(0..<4))
        for ids in [["s0", "s0", "s0", "s0", "s0"], ["s75", "skip", "s25", "skip", "s50"]] {
            try a.compose(ids: ids)
            try b.compose(ids: ids)
            #expect(a.model.forward(x, training: false) == b.model.forward(x, training: false))
        }
    }

    @Test func tamperedWeightsAreRefused() throws {
        var bytes = try Fixture.built.package.encode()
        // Flip one byte near the end of the weights (inside the second file).
        bytes[bytes.count - 1024 - 700] ^= 0x40
        #expect(throws: PackageError.hashMismatch("weights.safetensors: SHA-256 differs from the manifest's (tampered or corrupted)")) {
            try ElasticPackage.decode(bytes)
        }
    }

    @Test func tamperedHeaderOrManifestIsRefused() throws {
        let good = try Fixture.built.package.encode()
        var header = good
        header[10] ^= 0x01   // inside the first header's name field → checksum mismatch
        #expect(throws: PackageError.invalidArchive("entry 1: header checksum mismatch")) { try ElasticPackage.decode(header) }
        // Change the manifest's claimed combination count, keeping the tar checksums valid by re-archiving.
        let entries = try TarArchive.read(good)
        var manifest = String(decoding: entries[0].bytes, as: UTF8.self)
        manifest = manifest.replacingOccurrences(of: "\"combination_count\" : 3125", with: "\"combination_count\" : 3126")
        let rewritten = TarArchive.write([TarArchive.Entry(name: entries[0].name, bytes: Array(manifest.utf8)), entries[1]])
        #expect(throws: PackageError.invalidManifest("combination_count: 3126 but the blocks give 3125")) { try ElasticPackage.decode(rewritten) }
    }

    @Test(arguments: [0, 100, 511, 512, 4096, -1536, -1024, -512, -1])
    func truncatedPackagesAreRefused(cut: Int) throws {
        let bytes = try Fixture.built.package.encode()
        let length = cut >= 0 ? cut : bytes.count + cut
        #expect(throws: PackageError.self) { try ElasticPackage.decode(Array(bytes.prefix(length))) }
    }

    @Test func oversizedPackagesAreRefusedBeforeParsing() throws {
        let bytes = try Fixture.built.package.encode()
        #expect(throws: PackageError.tooLarge("\(bytes.count) bytes, the limit is 1000")) { try ElasticPackage.decode(bytes, maxBytes: 1000) }
    }

    @Test func tensorsOutsideTheNetworkAreRefused() throws {
        var package = Fixture.built.package
        package.tensors["blocks.9.conv1.weight"] = SafeTensor(floats: [1, 2], shape: [2])
        #expect(throws: PackageError.invalidManifest("weights: tensor blocks.9.conv1.weight is not part of the declared network")) {
            try ElasticPackage.decode(try package.encode())
        }
        var missing = Fixture.built.package
        missing.tensors["blocks.2.s50.conv1.weight"] = nil
        #expect(throws: PackageError.self) { try ElasticPackage.decode(try missing.encode()) }
    }

    @Test func tarRoundTripAndStrictness() throws {
        let entries = [TarArchive.Entry(name: "a.json", bytes: Array("{}".utf8)), TarArchive.Entry(name: "b.bin", bytes: [UInt8](repeating: 7, count: 1500))]
        let bytes = TarArchive.write(entries)
        #expect(bytes.count % 512 == 0)
        #expect(try TarArchive.read(bytes) == entries)
        let duplicate = TarArchive.write([entries[0], entries[0]])
        #expect(throws: PackageError.invalidArchive("a.json: appears twice")) { try TarArchive.read(duplicate) }
        #expect(throws: PackageError.invalidArchive("data after the end of the archive")) { try TarArchive.read(bytes + [1] + [UInt8](repeating: 0, count: 511)) }
        var padding = bytes
        padding[512 + 2 + 10] = 1   // after a.json's two bytes, inside its padding
        #expect(throws: PackageError.invalidArchive("a.json: padding after the content is not zero (tampered?)")) { try TarArchive.read(padding) }
    }

    /// The Pareto frontier of the report is exactly the set of non-dominated points, checked by brute force.
    @Test func reportFrontierIsTheNonDominatedSet() {
        let report = ScalingReport(manifest: Fixture.built.package.manifest)
        #expect(report.points.count == 3125)
        let frontier = Set(report.frontier.map(\.choice))
        for p in report.points {
            let dominated = report.points.contains { q in
                (q.latencyMs < p.latencyMs && q.accuracy >= p.accuracy) || (q.latencyMs <= p.latencyMs && q.accuracy > p.accuracy)
            }
            if frontier.contains(p.choice) { #expect(!dominated) }
        }
        for p in report.points where !frontier.contains(p.choice) {
            #expect(report.frontier.contains { $0.latencyMs <= p.latencyMs && $0.accuracy >= p.accuracy })
        }
        #expect(report.uniform.count == 4)
        #expect(report.depthOnly.count == 32)
        let rows = report.table()
        #expect(rows.allSatisfy { r in (r.elastic ?? 0) >= (r.uniform ?? 0) && (r.elastic ?? 0) >= (r.depthOnly ?? 0) })
        #expect(report.csv.split(separator: "\n").count == 3126)
    }
}
