import Foundation
import Testing
@testable import Learning

@Suite struct DataTests {
    @Test func fashionMNISTLoadsFromTheDebianPackage() throws {
        let test = try FashionMNIST.load(split: .test)
        #expect(test.count == 10_000 && test.height == 28 && test.width == 28)
        #expect(test.labels!.allSatisfy { $0 < 10 })
        let train = try FashionMNIST.load(split: .train, limit: 10)
        #expect(train.labels?.first == 9)   // the first training image is an ankle boot
    }

    @Test func missingDatasetNamesThePackage() {
        do {
            _ = try FashionMNIST.load(split: .test, directory: "/nonexistent")
            Issue.record("loaded from nowhere")
        } catch {
            #expect("\(error)".contains("dataset-fashion-mnist"))
        }
    }

    @Test func gzipMatchesTheSystemToolAndRejectsGarbage() throws {
        let text = Array(String(repeating: "fleet adapt ", count: 1000).utf8)
        let path = NSTemporaryDirectory() + "gz-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-f", path]
        try p.run()
        p.waitUntilExit()
        let gz = Array(FileManager.default.contents(atPath: path + ".gz")!)
        try? FileManager.default.removeItem(atPath: path + ".gz")
        #expect(try Gzip.decompress(gz) == text)
        #expect(throws: DataError.self) { try Gzip.decompress(Array(gz.prefix(gz.count / 2))) }
        #expect(throws: DataError.self) { try Gzip.decompress([1, 2, 3, 4, 5]) }
        #expect(throws: DataError.self) { try IDX.parse([0, 0, 8, 1, 0, 0, 0, 9, 1]) }
    }

    @Test func corruptionsAreDeterministicSubsetConsistentAndGrowWithSeverity() throws {
        let clean = try FashionMNIST.load(split: .test, limit: 64)
        for c in Corruption.allCases {
            let a = try c.apply(to: clean, severity: 3, seed: 42)
            #expect(a == (try c.apply(to: clean, severity: 3, seed: 42)), "\(c) not deterministic")
            let sub = try c.apply(to: clean.subset(10..<20), severity: 3, seed: 42, firstIndex: 10)
            #expect(sub.images == a.subset(10..<20).images, "\(c) subset differs")
            var previous = -1.0
            var grows = 0
            for s in 1...5 {
                let x = try c.apply(to: clean, severity: s, seed: 42)
                let d = zip(x.images, clean.images).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(x.images.count)
                if d > previous { grows += 1 }
                previous = d
            }
            #expect(grows >= 4, "\(c): effect does not grow with severity")
        }
        #expect(throws: DataError.self) { try Corruption.fog.apply(to: clean, severity: 6, seed: 1) }
    }

    @Test func localDatasetRoundTrips() throws {
        let data = try Corruption.fog.apply(to: try FashionMNIST.load(split: .test, limit: 50), severity: 2, seed: 9)
        let dir = NSTemporaryDirectory() + "local-\(UUID().uuidString)"
        try LocalDataset.write(data, metadata: ["corruption": "fog", "severity": "2"], to: dir)
        let (back, meta) = try LocalDataset.read(directory: dir)
        #expect(back == data)
        #expect(meta["corruption"] == "fog")
    }
}

@Suite struct SafeTensorsTests {
    let sample: [String: SafeTensor] = [
        "b.bias": SafeTensor(floats: [1.5, -2], shape: [2]),
        "a.weight": SafeTensor(floats: (0..<6).map { Float($0) / 3 }, shape: [2, 3]),
        "labels": SafeTensor(uint8: [1, 2, 3], shape: [3]),
    ]

    @Test func roundTripIsExact() throws {
        let bytes = SafeTensors.encode(sample, metadata: ["format": "pt"])
        let (back, meta) = try SafeTensors.decode(bytes)
        #expect(back == sample)
        #expect(meta == ["format": "pt"])
        #expect(try back["a.weight"]!.floats()[4] == Float(4) / 3)
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
    }

    /// Bytes written by Python's `safetensors.numpy.save({"x": np.array([1.0, 2.0], dtype=np.float32)})`.
    @Test func readsTheReferenceWriter() throws {
        let header = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
        bytes += withUnsafeBytes(of: Float(1)) { Array($0) } + withUnsafeBytes(of: Float(2)) { Array($0) }
        #expect(try SafeTensors.decode(bytes).tensors["x"]?.floats() == [1, 2])
    }

    @Test func corruptFilesAreRejected() {
        let good = SafeTensors.encode(sample)
        func header(_ json: String, data: Int) -> [UInt8] {
            withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { Array($0) } + Array(json.utf8) + [UInt8](repeating: 0, count: data)
        }
        let cases: [(String, [UInt8])] = [
            ("short", [1, 2, 3]),
            ("truncated", Array(good.prefix(good.count - 3))),
            ("header past end", withUnsafeBytes(of: UInt64(1_000).littleEndian) { Array($0) } + [UInt8](repeating: 32, count: 10)),
            ("oversized header", withUnsafeBytes(of: UInt64(200_000_000).littleEndian) { Array($0) } + [0]),
            ("not json", header("not json", data: 0)),
            ("wrong dtype", header(#"{"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#, data: 4)),
            ("mis-shaped", header(#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8)),
            ("negative dim", header(#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: 4)),
            ("hole", header(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8)),
            ("trailing", header(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 8)),
            ("overlap", header(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 4)),
            ("bool dims", header(#"{"x":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, data: 4)),
        ]
        for (name, bytes) in cases {
            #expect(throws: SafeTensorsError.self, "\(name)") { try SafeTensors.decode(bytes) }
        }
        #expect(throws: SafeTensorsError.self) { try SafeTensor(uint8: [1], shape: [1]).floats() }
    }
}
