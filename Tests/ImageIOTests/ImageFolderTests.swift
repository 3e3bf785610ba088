import Foundation
import Testing
@testable import ImageIO

@Suite struct ImageFolderTests {
    static func copy(_ fixture: String, to path: String, modified: Date? = nil) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path(fixture), toPath: path)
        if let modified { try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: path) }
    }

    final class Log: @unchecked Sendable {   // appended from the calling test's thread only
        var lines: [String] = []
        func callAsFunction(_ s: String) { lines.append(s) }
    }

    static let prep = Preprocessing(resize: .size(width: 8, height: 8), channels: .rgb, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])

    @Test func classFoldersGiveSortedLabelsLikeTorchvision() throws {
        let root = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Code-point order: "Zebra" < "cat" < "dog" (torchvision sorts Python strings the same way).
        try Self.copy("rgb.png", to: root + "/dog/b.png")
        try Self.copy("baseline.jpg", to: root + "/dog/a.JPG")
        try Self.copy("gray.png", to: root + "/cat/x.png")
        try Self.copy("palette.png", to: root + "/cat/nested/deeper/y.png")
        try Self.copy("progressive.jpg", to: root + "/Zebra/z.jpeg")
        try Self.copy("truncated.png", to: root + "/cat/broken.png")
        try Self.copy("huge.jpg", to: root + "/dog/huge.jpg")
        try Self.copy("text.jpg", to: root + "/Zebra/notes.jpg")
        try Self.copy("empty.png", to: root + "/Zebra/empty.png")
        try Data("labels".utf8).write(to: URL(fileURLWithPath: root + "/dog/README.txt"))
        try Data("hidden".utf8).write(to: URL(fileURLWithPath: root + "/dog/.partial.png"))
        let log = Log()
        let folder = try ImageFolder.scan(root, log: log.callAsFunction)
        #expect(folder.isLabeled && folder.classes == ["Zebra", "cat", "dog"])
        #expect(folder.entries.map(\.relativePath) == ["Zebra/empty.png", "Zebra/notes.jpg", "Zebra/z.jpeg", "cat/broken.png",
                                                       "cat/nested/deeper/y.png", "cat/x.png", "dog/a.JPG", "dog/b.png", "dog/huge.jpg"])
        #expect(folder.entries.map { $0.label! } == [0, 0, 0, 1, 1, 1, 2, 2, 2])
        #expect(log.lines == ["skipped \(root)/dog/README.txt: not a .jpg, .jpeg or .png file"])

        let batch = try folder.load(Self.prep, log: log.callAsFunction)
        #expect(batch.entries.map(\.relativePath) == ["Zebra/z.jpeg", "cat/nested/deeper/y.png", "cat/x.png", "dog/a.JPG", "dog/b.png"])
        #expect(batch.labels == [0, 1, 1, 2, 2])
        #expect(batch.shape == [5, 3, 8, 8] && batch.data.count == 5 * 3 * 64)
        // One line per skipped file, naming it and why.
        let skipped = log.lines.dropFirst()
        #expect(skipped.count == 4, "\(log.lines)")
        for (name, why) in [("Zebra/empty.png", "empty"), ("Zebra/notes.jpg", "not a JPEG or PNG"), ("cat/broken.png", "PNG"),
                            ("dog/huge.jpg", "20000x20000x3")] {
            #expect(skipped.contains { $0.hasPrefix("skipped \(root)/\(name): ") && $0.contains(why) }, "\(name): \(log.lines)")
        }
        // The batch's first image is exactly the preprocessed decode of its file.
        let first = try Self.prep.apply(try ImageDecoder.decode(file: root + "/Zebra/z.jpeg"))
        #expect(Array(batch.data.prefix(192)) == first.data)
        // The same folder scans to the same order again.
        #expect(try ImageFolder.scan(root).entries == folder.entries)
    }

    @Test func aFlatOrNestedFolderHasNoLabels() throws {
        let root = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.copy("rgb.png", to: root + "/frame-2.png")
        try Self.copy("baseline.jpg", to: root + "/frame-10.jpg")
        try Self.copy("rgba.png", to: root + "/2026-12-01/frame-1.png")
        let folder = try ImageFolder.scan(root)
        #expect(!folder.isLabeled && folder.classes.isEmpty)
        #expect(folder.entries.map(\.relativePath) == ["2026-12-01/frame-1.png", "frame-10.jpg", "frame-2.png"])
        #expect(folder.entries.allSatisfy { $0.label == nil })
        let batch = try folder.load(Self.prep)
        #expect(batch.labels == nil && batch.count == 3 && batch.shape == [3, 3, 8, 8])
        // Forcing the layout: as class folders, the loose files are skipped with a line each.
        let log = Log()
        let labeled = try ImageFolder.scan(root, layout: .labeled, log: log.callAsFunction)
        #expect(labeled.classes == ["2026-12-01"] && labeled.entries.map(\.relativePath) == ["2026-12-01/frame-1.png"])
        #expect(log.lines.count == 2 && log.lines.allSatisfy { $0.contains("not inside a class folder") }, "\(log.lines)")
        // An empty folder is an empty batch, a missing one an error.
        let empty = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(try ImageFolder.scan(empty).load(Self.prep).count == 0)
        #expect(throws: ImageError.self) { try ImageFolder.scan(root + "/nothing-here") }
    }

    @Test func newestNKeepsTheMostRecentlyModifiedInPathOrder() throws {
        let root = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let t0 = Date(timeIntervalSince1970: 1_700_000_000)
        // Written out of name order; c and d share a time (the tie goes to the smaller path).
        try Self.copy("rgb.png", to: root + "/a.png", modified: t0.addingTimeInterval(40))
        try Self.copy("rgb.png", to: root + "/b.png", modified: t0.addingTimeInterval(10))
        try Self.copy("rgb.png", to: root + "/c.png", modified: t0.addingTimeInterval(30))
        try Self.copy("rgb.png", to: root + "/d.png", modified: t0.addingTimeInterval(30))
        try Self.copy("rgb.png", to: root + "/e.png", modified: t0.addingTimeInterval(20))
        #expect(try ImageFolder.scan(root, newest: 2).entries.map(\.relativePath) == ["a.png", "c.png"])
        #expect(try ImageFolder.scan(root, newest: 3).entries.map(\.relativePath) == ["a.png", "c.png", "d.png"])
        #expect(try ImageFolder.scan(root, newest: 10).entries.count == 5)
        #expect(try ImageFolder.scan(root, newest: 0).entries.isEmpty)
        // A new frame enters the window and the oldest of it leaves.
        try Self.copy("rgb.png", to: root + "/f.png", modified: t0.addingTimeInterval(50))
        #expect(try ImageFolder.scan(root, newest: 3).entries.map(\.relativePath) == ["a.png", "c.png", "f.png"])
    }

    @Test func symlinkedDirectoriesAreNotFollowed() throws {
        let root = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.copy("rgb.png", to: root + "/sub/a.png")
        try FileManager.default.createSymbolicLink(atPath: root + "/sub/loop", withDestinationPath: root)
        try FileManager.default.createSymbolicLink(atPath: root + "/sub/link.png", withDestinationPath: root + "/sub/a.png")
        let log = Log()
        let folder = try ImageFolder.scan(root, layout: .unlabeled, log: log.callAsFunction)
        #expect(folder.entries.map(\.relativePath) == ["sub/a.png", "sub/link.png"])
        #expect(log.lines.count == 1 && log.lines[0].contains("sub/loop"), "\(log.lines)")
        #expect(try folder.load(Self.prep).count == 2)
    }

    @Test func imagesOfAnotherSizeWithoutAResizeAreSkippedFromTheBatch() throws {
        let root = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.copy("rgb.png", to: root + "/a.png")      // 23×17
        try Self.copy("rgba.png", to: root + "/b.png")     // 19×13
        let log = Log()
        let batch = try ImageFolder.scan(root).load(Preprocessing(), log: log.callAsFunction)
        #expect(batch.shape == [1, 3, 17, 23])
        #expect(log.lines.count == 1 && log.lines[0].contains("b.png: preprocessed to 1x3x13x19"), "\(log.lines)")
    }
}
