import Foundation
import Learning

/// Real image files for the agent's tests: 8-bit grayscale PNGs of Fashion-MNIST images (written here with stored
/// deflate blocks: valid PNG that libpng decodes, and exact), and the bad files ImageIO's fixtures hold.
enum ImageFiles {
    /// ImageIO's committed fixtures (`deploy/tools/make_image_fixtures.py`).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ImageIOTests/Fixtures").path

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return be32(UInt32(data.count)) + typed + be32(crc32(typed))
    }

    /// A grayscale 8-bit PNG of `pixels` (rows top to bottom).
    static func png(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        var raw: [UInt8] = []
        for y in 0..<height { raw.append(0); raw.append(contentsOf: pixels[(y * width)..<((y + 1) * width)]) }
        var z: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65535, raw.count - offset)
            let final: UInt8 = offset + n == raw.count ? 1 : 0
            z += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            z += raw[offset..<(offset + n)]
            offset += n
        } while offset < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for v in raw { a = (a + UInt32(v)) % 65521; b = (b + a) % 65521 }
        z += be32((b << 16) | a)
        let ihdr = be32(UInt32(width)) + be32(UInt32(height)) + [8, 0, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", [])
    }

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
