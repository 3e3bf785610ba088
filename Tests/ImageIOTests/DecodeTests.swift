import Foundation
import Testing
@testable import ImageIO

@Suite struct DecodeTests {
    /// JPEG decodes may differ by this much per sample between libjpeg builds (IDCT/upsampling rounding); PNG is exact.
    static let jpegTolerance = 1

    @Test func pngDecodesEqualPillowExactly() throws {
        let index = try Fixtures.index()
        let pngs = index.images.filter { $0.file.hasSuffix(".png") }
        #expect(pngs.count == 12)
        for ref in pngs {
            let image = try ImageDecoder.decode(file: Fixtures.path(ref.file))
            let expected = try Fixtures.expected(ref)
            #expect(image.width == ref.width && image.height == ref.height && image.channels == ref.channels, "\(ref.file)")
            #expect(image == expected, "\(ref.file): \(zip(image.pixels, expected.pixels).filter { $0 != $1 }.count) samples differ")
        }
    }

    @Test func jpegDecodesEqualPillowWithinOne() throws {
        let index = try Fixtures.index()
        let jpegs = index.images.filter { $0.file.hasSuffix(".jpg") }
        #expect(jpegs.map(\.file) == ["baseline.jpg", "progressive.jpg", "gray.jpg"])
        for ref in jpegs {
            let image = try ImageDecoder.decode(file: Fixtures.path(ref.file))
            let expected = try Fixtures.expected(ref)
            #expect(image.width == ref.width && image.height == ref.height && image.channels == ref.channels, "\(ref.file)")
            let diff = zip(image.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            print("\(ref.file): max |ours − Pillow| = \(diff)")
            #expect(diff <= Self.jpegTolerance, "\(ref.file): max difference \(diff)")
        }
    }

    @Test func headersAreReadWithoutDecoding() throws {
        #expect(try ImageDecoder.header(Fixtures.bytes("rgba.png"), source: "rgba.png") == ImageHeader(format: .png, width: 19, height: 13, channels: 3))
        #expect(try ImageDecoder.header(Fixtures.bytes("gray16.png"), source: "g") == ImageHeader(format: .png, width: 13, height: 9, channels: 1))
        #expect(try ImageDecoder.header(Fixtures.bytes("progressive.jpg"), source: "p") == ImageHeader(format: .jpeg, width: 31, height: 23, channels: 3))
        #expect(try ImageDecoder.header(Fixtures.bytes("gray.jpg"), source: "g") == ImageHeader(format: .jpeg, width: 22, height: 18, channels: 1))
        #expect(try ImageDecoder.header(Fixtures.bytes("huge.png"), source: "h") == ImageHeader(format: .png, width: 20000, height: 20000, channels: 3))
        #expect(try ImageDecoder.header(Fixtures.bytes("huge.jpg"), source: "h") == ImageHeader(format: .jpeg, width: 20000, height: 20000, channels: 3))
    }

    @Test func badFilesAreErrorsNamingTheFile() throws {
        let index = try Fixtures.index()
        #expect(index.bad.count == 9)
        for bad in index.bad {
            let path = Fixtures.path(bad.file)
            do {
                let image = try ImageDecoder.decode(file: path)
                Issue.record("\(bad.file) decoded to \(image.width)x\(image.height)")
            } catch let error as ImageError {
                #expect(error.kind.rawValue == bad.kind, "\(bad.file): \(error)")
                #expect(error.source == path && "\(error)".hasPrefix(path + ": "), "\(error)")
            }
            // The byte form names what it is given.
            #expect(throws: ImageError.self) { try ImageDecoder.decode(Fixtures.bytes(bad.file), source: "upload") }
        }
    }

    @Test func everyPrefixOfAValidFileIsAnErrorOrAnImageNeverACrash() throws {
        for name in ["rgb.png", "palette.png", "rgba16.png", "interlaced.png", "baseline.jpg", "progressive.jpg"] {
            let bytes = try Fixtures.bytes(name)
            var errors = 0
            for n in stride(from: 0, to: bytes.count, by: 7) {
                do { _ = try ImageDecoder.decode(Array(bytes.prefix(n)), source: "\(name)[..<\(n)]") } catch is ImageError { errors += 1 }
            }
            // Every proper prefix misses the end of the data (a JPEG's EOI, a PNG's IEND or its last IDAT bytes).
            #expect(errors >= bytes.count / 7 - 2, "\(name): only \(errors) of \(bytes.count / 7 + 1) prefixes refused")
        }
    }

    @Test func flippedBytesNeverCrash() throws {
        var rng = SystemRandomNumberGenerator()
        for name in ["rgb.png", "gray.png", "baseline.jpg", "progressive.jpg", "gray.jpg"] {
            let bytes = try Fixtures.bytes(name)
            for _ in 0..<200 {
                var b = bytes
                for _ in 0..<3 { b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
                if let image = try? ImageDecoder.decode(b, source: name) {
                    #expect(image.pixels.count == image.width * image.height * image.channels)
                }
            }
        }
    }

    @Test func theSampleLimitIsConfigurable() throws {
        // rgb.png is 23×17×3 = 1173 samples.
        let tight = DecodeLimits(maxSamples: 1172, maxFileBytes: 1 << 20)
        #expect(throws: ImageError(Fixtures.path("rgb.png"), .tooLarge, "header declares 23x17x3 samples, over the limit of 1172")) {
            try ImageDecoder.decode(file: Fixtures.path("rgb.png"), limits: tight)
        }
        #expect(try ImageDecoder.decode(file: Fixtures.path("rgb.png"), limits: DecodeLimits(maxSamples: 1173, maxFileBytes: 1 << 20)).pixels.count == 1173)
        // The file size bound comes first.
        let small = DecodeLimits(maxSamples: 1 << 20, maxFileBytes: 1000)
        #expect(throws: ImageError.self) { try ImageDecoder.decode(file: Fixtures.path("rgb.png"), limits: small) }
        do { _ = try ImageDecoder.decode(file: Fixtures.path("rgb.png"), limits: small) } catch let e as ImageError { #expect(e.kind == .tooLarge, "\(e)") }
    }

    @Test func directoriesFIFOsAndMissingFilesAreUnreadable() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/fifo.png", 0o644) == 0)
        for path in [dir, dir + "/fifo.png", dir + "/missing.png"] {
            do { _ = try ImageDecoder.decode(file: path); Issue.record("\(path) decoded") } catch let e as ImageError {
                #expect(e.kind == .unreadable && e.source == path, "\(e)")
            }
        }
    }
}
