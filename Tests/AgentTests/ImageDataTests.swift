@testable import Agent
import ElasticModel
import FleetAPI
import Foundation
import ImageIO
import Learning
import Testing

/// A folder of JPEG/PNG files as the device's data (issue 14, item 1): real files, decoded by libpng/libjpeg-turbo,
/// preprocessed as the built-in packages declare, bad files skipped with one line each, and a real adapt job on them.
@Suite struct ImageDataTests {
    /// A built-in package's pipeline (no record in its manifest): resize to exactly 28×28, gray.
    static let builtIn = try! PackageInput(inputShape: [1, 28, 28], preprocessing: nil)

    @Test func anImageFolderIsTheDeviceDataWithItsLabelsAndBadFilesSkippedOnceEach() throws {
        let data = try FashionMNIST.load(split: .test).subset(0..<40)
        let dir = try ImageFiles.temporaryDirectory("folder")
        try ImageFiles.labeledFolder(data, at: dir)
        // The bad files sit inside a class folder, so they would count as that class's images.
        let bad = try ImageFiles.copyBadFiles(into: dir + "/" + ImageFiles.folderName(0))
        let log = LogLines()
        let read = try LocalImages.readFolder(dir, input: Self.builtIn, window: 1000, log: log.write)

        #expect(read.count == 40)
        #expect((read.channels, read.height, read.width) == (1, 28, 28))
        // Files are ordered by class folder, then name: compare as (label, pixels) sets.
        let expected = (0..<40).map { i in "\(data.labels![i])|" + data.subset(i..<(i + 1)).images.map(String.init).joined(separator: ",") }
        let got = (0..<read.count).map { i in "\(read.labels![i])|" + read.subset(i..<(i + 1)).images.map(String.init).joined(separator: ",") }
        #expect(Set(got) == Set(expected), "28×28 gray PNGs decode and preprocess to exactly their pixels, with their folder's label")
        for path in bad {
            let lines = log.all.filter { $0.contains(path) }
            #expect(lines.count == 1, "one log line for \(path): \(log.all)")
        }
        #expect(log.all.count == bad.count, "\(log.all)")
    }

    @Test func jpegAndColorPNGAreResizedAndGrayedAsThePackageDeclares() throws {
        let dir = try ImageFiles.temporaryDirectory("resize")
        for name in ["baseline.jpg", "rgb.png", "gray.jpg"] {
            try ImageFiles.write([UInt8](try Data(contentsOf: URL(fileURLWithPath: ImageFiles.fixtures + "/" + name))), to: dir + "/" + name)
        }
        let read = try LocalImages.readFolder(dir, input: Self.builtIn, window: 1000, log: { _ in })
        #expect(read.count == 3 && read.labels == nil)
        let raw = Self.builtIn.geometry
        for (i, name) in ["baseline.jpg", "gray.jpg", "rgb.png"].enumerated() {
            let t = try raw.apply(try ImageDecoder.decode(file: dir + "/" + name))
            #expect(t.shape == [1, 1, 28, 28])
            #expect(read.subset(i..<(i + 1)).images == t.data.map { UInt8(max(0, min(255, $0.rounded()))) }, "\(name)")
        }
        // What the service feeds the network is that, normalised as the engine normalises the uint8 data.
        let full = try Self.builtIn.preprocessing.apply(try ImageDecoder.decode(file: dir + "/gray.jpg"))
        let engine = read.tensor([1]).data
        let worst: Float = zip(full.data, engine).map { (a: Float, b: Float) -> Float in abs(a - b) }.max() ?? .infinity
        let bound: Float = 0.5 / 255 / 0.3530 + 1e-5
        #expect(worst <= bound)
    }

    @Test func aWatchedSpoolPicksUpNewFramesAndUsesOnlyTheNewestWindowDeletingNothing() throws {
        let data = try FashionMNIST.load(split: .test).subset(0..<30)
        let dir = try ImageFiles.temporaryDirectory("spool")
        let old = Date().addingTimeInterval(-3600)
        for i in 0..<5 { try ImageFiles.write(ImageFiles.png(data, i), to: "\(dir)/frame-\(i).png", modified: old.addingTimeInterval(Double(i))) }
        let spool = LocalImages(directory: dir, window: 10, watch: true, log: { _ in })
        #expect(!spool.isSafeTensors)
        #expect(try spool.images(for: Self.builtIn).data.count == 5)

        // 25 more frames arrive, newer: the window is the newest 10 (frames 20…29), whatever their names.
        for i in 5..<30 { try ImageFiles.write(ImageFiles.png(data, i), to: "\(dir)/frame-\(i).png", modified: old.addingTimeInterval(60 + Double(i))) }
        let window = try spool.images(for: Self.builtIn).data
        #expect(window.count == 10)
        let newest = Set((20..<30).map { data.subset($0..<($0 + 1)).images })
        #expect(Set((0..<10).map { window.subset($0..<($0 + 1)).images }) == newest)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 30, "the spool deletes nothing")

        // Not watched: read once, new frames ignored until restart.
        let fixed = LocalImages(directory: dir, window: 100, watch: false, log: { _ in })
        #expect(try fixed.images(for: Self.builtIn).data.count == 30)
        try ImageFiles.write(ImageFiles.png(data, 0), to: "\(dir)/late.png")
        #expect(try fixed.images(for: Self.builtIn).data.count == 30)
        #expect(try spool.images(for: Self.builtIn).data.count == 10)
    }

    @Test func anAdaptJobTrainsOnAFolderOfCorruptedPNGs() async throws {
        let clean = try FashionMNIST.load(split: .test).subset(200..<360)
        let shifted = try Corruption.contrast.apply(to: clean, severity: 4, seed: 5, firstIndex: 200)
        let dir = try ImageFiles.temporaryDirectory("adapt")
        try ImageFiles.labeledFolder(shifted, at: dir)
        _ = try ImageFiles.copyBadFiles(into: dir + "/" + ImageFiles.folderName(3))
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        var configuration = AgentFixture.configuration(data: dir, maxJobs: 1)
        configuration.watch = true
        let job = AgentFixture.job(steps: 20)
        coordinator.enqueue(job)
        let log = LogLines()
        let running = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write))
        #expect(try await running.finished() == 1, "\(log.all)")
        let result = try #require(coordinator.calls.compactMap(\.result).first { $0.job == job.id }?.result)
        #expect(result.outcome == .succeeded, "\(result)")
        #expect(result.metrics?.samples == 160)
        #expect(result.metrics?.accuracyBefore != nil, "ImageFolder labels report accuracy")
        #expect(log.contains("160 local images (image folder"), "\(log.all)")
        #expect(coordinator.calls.contains { if case .artifact(job.id, 1, _) = $0 { true } else { false } })
    }
}
