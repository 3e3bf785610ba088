@testable import ElasticModel
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
        #expect(throws: PackageError.hashMismatch(file: "weights.safetensors", message: "SHA-256 differs from the manifest's (tampered or corrupted)")) {
            try ElasticPackage.decode(bytes)
        }
    }

    @Test func tamperedHeaderOrManifestIsRefused() throws {
        let good = try Fixture.built.package.encode()
        var header = good
        header[10] ^= 0x01   // inside the first header's name field → checksum mismatch
        #expect(throws: PackageError.invalidArchive("entry 1: header checksum mismatch")) { try ElasticPackage.decode(header) }
        // Change the manifest's claimed combination count, with a fresh digest and valid tar checksums.
        let entries = try TarArchive.read(good)
        #expect(entries.map(\.name) == ["manifest.sha256", "manifest.json", "weights.safetensors"])
        var manifest = String(decoding: entries[1].bytes, as: UTF8.self)
        manifest = manifest.replacingOccurrences(of: "\"combination_count\" : 3125", with: "\"combination_count\" : 3126")
        let rewritten = ElasticPackage.archive(manifest: Array(manifest.utf8), weights: entries[2].bytes)
        #expect(throws: PackageError.invalidManifest(field: "combination_count", message: "3126 but the blocks give 3125")) { try ElasticPackage.decode(rewritten) }
    }

    /// One flipped byte of the manifest that keeps it valid JSON (a digit of an accuracy) is caught by its digest.
    @Test func aFlippedManifestDigitIsRefused() throws {
        var entries = try TarArchive.read(try Fixture.built.package.encode())
        var manifest = entries[1].bytes
        let key = Array("\"base_accuracy\" : 0.".utf8)
        let at = try #require((0...(manifest.count - key.count)).first { Array(manifest[$0..<($0 + key.count)]) == key }) + key.count
        manifest[at] = manifest[at] == UInt8(ascii: "1") ? UInt8(ascii: "2") : UInt8(ascii: "1")
        entries[1] = TarArchive.Entry(name: entries[1].name, bytes: manifest)
        #expect(throws: PackageError.hashMismatch(file: "manifest.json", message: "SHA-256 differs from manifest.sha256 (tampered or corrupted)")) {
            try ElasticPackage.decode(TarArchive.write(entries))
        }
        // The digest file must be exactly one sha256sum line for the manifest.
        entries[0] = TarArchive.Entry(name: entries[0].name, bytes: Array("not a digest\n".utf8))
        #expect(throws: PackageError.self) { try ElasticPackage.decode(TarArchive.write(entries)) }
        // A format 1 package (manifest and weights only) is refused with what to do.
        #expect(throws: PackageError.unsupported("a format 1 package: it has no manifest.sha256, so its manifest is not covered by a digest; rebuild it with `fleetadapt model build`")) {
            try ElasticPackage.decode(TarArchive.write([entries[1], entries[2]]))
        }
    }

    /// The tensors the manifest declares, computed by arithmetic, are exactly those the built network registers,
    /// for both families and both adapter kinds.
    @Test(arguments: [AdapterKind.parallel, .liteResidual])
    func declaredNetworkIsTheBuiltNetwork(kind: AdapterKind) throws {
        let architectures = [Architecture.resnet(widths: [8, 16, 24], blocksPerStage: [1, 2, 1], inputShape: [3, 20, 17]),
                             Architecture.mobileNetV2(stemWidth: 8, stages: [.init(channels: 8, blocks: 1, stride: 1), .init(channels: 12, blocks: 2, stride: 2)],
                                                      expansion: 3, inputShape: [1, 28, 28])]
        for arch in architectures {
            let positions = try ElasticNetwork.positions(of: arch.makeModel(), sparsities: [0, 0.25, 0.5, 0.75])
            let net = try ElasticNetwork(architecture: arch, positions: positions, adapterKind: kind)
            let declared = try DeclaredNetwork(architecture: arch, positions: positions, adapterKind: kind)
            let built = Dictionary(uniqueKeysWithValues: net.model.store.entries.map { ($0.name, $0.shape) })
            #expect(declared.tensors == built, "\(arch.family)")
            #expect(declared.floatCount == net.model.store.entries.reduce(0) { $0 + $1.count })
        }
    }

    /// A manifest that declares a far larger network than its weights is refused from the weights' header, with
    /// the declared shape named, before the network is built.
    @Test func aWiderDeclaredNetworkIsRefusedFromTheHeader() throws {
        var package = Fixture.built.package
        package.manifest.architecture.widths = [1024, 16, 32]
        package.manifest.blocks[0].inChannels = 1024
        package.manifest.blocks[0].outChannels = 1024
        package.manifest.blocks[0].hiddenChannels = 1024
        package.manifest.blocks[1].inChannels = 1024
        for v in package.manifest.blocks[0].variants.indices where package.manifest.blocks[0].variants[v].hiddenChannels != nil {
            package.manifest.blocks[0].variants[v].hiddenChannels = Int(1024 * (1 - package.manifest.blocks[0].variants[v].sparsity))
        }
        #expect(throws: PackageError.invalidWeights("blocks.0.adapter.conv.weight: the manifest declares F32 [1024, 1024, 1, 1], the weights hold F32 [8, 8, 1, 1]")) {
            try ElasticPackage.decode(try package.encode())
        }
    }

    /// Out-of-range numbers name their field (the manifest's JSON path).
    @Test func outOfRangeManifestNumbersNameTheirField() throws {
        var package = Fixture.built.package
        package.manifest.blocks[2].variants[1].profile?.paramBytes = Int.max
        #expect(throws: PackageError.invalidManifest(field: "blocks[2].variants[1].profile.param_bytes", message: "must be in 0...1099511627776")) {
            try ElasticPackage.decode(try package.encode())
        }
        var hidden = Fixture.built.package
        hidden.manifest.blocks[1].hiddenChannels = 0
        #expect(throws: PackageError.invalidManifest(field: "blocks[1].hidden_channels", message: "the architecture's block has 16")) {
            try ElasticPackage.decode(try hidden.encode())
        }
        var runs = Fixture.built.package
        runs.manifest.reference.latencyRuns = -1
        #expect((try? ElasticPackage.decode(try runs.encode())) == nil)
        #expect(PackageError.invalidManifest(field: "reference.latency_runs", message: "x").field == "manifest.reference.latency_runs")
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
        #expect(throws: PackageError.invalidWeights("tensor blocks.9.conv1.weight is not part of the declared network")) {
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
