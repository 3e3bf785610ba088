import Foundation
import Learning
import TestSupport

/// Real image files for the agent's tests: 8-bit grayscale PNGs of Fashion-MNIST images (written here with stored
/// deflate blocks: valid PNG that libpng decodes, and exact), and the bad files ImageIO's fixtures hold.
enum ImageFiles {
    /// ImageIO's committed fixtures (`deploy/tools/make_image_fixtures.py`).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ImageIOTests/Fixtures").path

    /// A grayscale 8-bit PNG of `pixels` (rows top to bottom).
    static func png(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] { PNGFile.gray(width: width, height: height, pixels: pixels) }

    /// Image `i` of `data` as a PNG (1×28×28).
    static func png(_ data: LabeledImages, _ i: Int) -> [UInt8] {
        png(width: data.width, height: data.height, pixels: Array(data.images[(i * data.perImage)..<((i + 1) * data.perImage)]))
    }

    static func temporaryDirectory(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "fleetadapt-agent-\(name)-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ bytes: [UInt8], to path: String, modified: Date? = nil) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        if let modified { try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: path) }
    }

    /// An ImageFolder of `data`'s images, `class_name/NNNN.png` with Fashion-MNIST's class names (labels must exist).
    static func labeledFolder(_ data: LabeledImages, at dir: String, modified: Date? = nil) throws {
        for i in 0..<data.count {
            let label = Int(data.labels![i])
            try write(png(data, i), to: "\(dir)/\(folderName(label))/\(String(format: "%04d", i)).png", modified: modified)
        }
    }

    /// Class folder names in the order of the labels (sorted as code points equal the label order).
    static func folderName(_ label: Int) -> String { "\(label)-" + FashionMNIST.classNames[label].replacingOccurrences(of: "/", with: "_") }

    /// The bad files of the fixtures, with the reasons they are skipped.
    static let badFixtures = ["huge.png", "huge.jpg", "truncated.png", "truncated.jpg", "empty.png", "text.jpg", "badcrc.png"]

    static func copyBadFiles(into dir: String) throws -> [String] {
        var written: [String] = []
        for name in badFixtures {
            let target = dir + "/bad-" + name
            try write([UInt8](try Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + name))), to: target)
            written.append(target)
        }
        try write([], to: dir + "/zero.png")
        try write(Array("not an image at all\n".utf8), to: dir + "/notes.png")
        return written + [dir + "/zero.png", dir + "/notes.png"]
    }
}
