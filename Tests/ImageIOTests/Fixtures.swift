import Foundation
import Testing
@testable import ImageIO

/// The files `deploy/tools/make_image_fixtures.py` writes (committed under Tests/ImageIOTests/Fixtures).
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    struct ImageRef: Decodable { let file: String; let decode: String; let height: Int; let width: Int; let channels: Int; let exact: Bool }
    struct Case: Decodable { let image: String; let `case`: String; let preprocessing: Preprocessing; let tensor: String; let shape: [Int] }
    struct Bad: Decodable { let file: String; let kind: String }
    struct Index: Decodable { let generator: String; let images: [ImageRef]; let cases: [Case]; let bad: [Bad] }

    static func path(_ name: String) -> String { directory + "/" + name }

    static func index() throws -> Index {
        try JSONDecoder().decode(Index.self, from: Data(contentsOf: URL(fileURLWithPath: path("index.json"))))
    }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name)))) }

    static func floats(_ name: String) throws -> [Float] {
        let b = try bytes(name)
        return b.withUnsafeBytes { raw in (0..<b.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) } }
    }

    /// Pillow's decode (or round(v / 257) for the 16-bit files) as an `Image`.
    static func expected(_ ref: ImageRef) throws -> Image {
        Image(width: ref.width, height: ref.height, channels: ref.channels, pixels: try bytes(ref.decode))
    }

    /// Peak and current resident memory from /proc/self/status, in bytes.
    static func status(_ key: String) throws -> Int {
        let text = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
            Issue.record("no \(key) in /proc/self/status")
            return 0
        }
        return kb * 1024
    }

    /// Resets VmHWM to the current RSS (Linux: `5` in /proc/self/clear_refs).
    static func resetPeak() throws {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else {
            Issue.record("cannot open /proc/self/clear_refs")
            return
        }
        defer { try? handle.close() }
        try handle.write(contentsOf: Data("5".utf8))
    }

    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "imageio-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}
