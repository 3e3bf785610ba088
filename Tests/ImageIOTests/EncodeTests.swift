import Foundation
import Testing
@testable import ImageIO

/// The PNG writer against the decoder (both libpng, separate code paths): what it writes decodes to the same
/// pixels, gray and RGB, sizes from one pixel to frames larger than its first buffer guess.
@Suite struct EncodeTests {
    @Test func pngRoundTripsExactly() throws {
        var rng = SystemRandomNumberGenerator()
        for (w, h, c) in [(1, 1, 1), (28, 28, 1), (32, 32, 3), (17, 5, 3), (640, 480, 3)] {
            // Random pixels do not compress: the encoded file is larger than the raw samples.
            let pixels = (0..<(w * h * c)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let image = Image(width: w, height: h, channels: c, pixels: pixels)
            let file = try ImageEncoder.png(image)
            #expect(Array(file.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            #expect(try ImageDecoder.decode(file, source: "encoded \(w)x\(h)x\(c)") == image)
        }
    }

    @Test func aFlatFrameCompresses() throws {
        let image = Image(width: 320, height: 240, channels: 3, pixels: [UInt8](repeating: 77, count: 320 * 240 * 3))
        let file = try ImageEncoder.png(image)
        #expect(file.count < image.pixels.count / 20, "\(file.count) bytes")
        #expect(try ImageDecoder.decode(file, source: "flat") == image)
    }
}
