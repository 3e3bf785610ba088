import Foundation
import Testing
@testable import ImageIO

@Suite struct PreprocessingTests {
    static let tolerance: Float = 1e-4

    static func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    /// Every declared case equals torchvision's tensor within 1e-4, from the same 8-bit decode (Pillow's).
    @Test func casesEqualTorchvision() throws {
        let index = try Fixtures.index()
        #expect(index.cases.count == 12)
        var worst: Float = 0
        for c in index.cases {
            let ref = try #require(index.images.first { $0.file == c.image })
            let t = try c.preprocessing.apply(try Fixtures.expected(ref))
            let expected = try Fixtures.floats(c.tensor)
            #expect(t.shape == c.shape, "\(c.image) \(c.case)")
            #expect(t.data.count == expected.count, "\(c.image) \(c.case)")
            let d = Self.maxDiff(t.data, expected)
            worst = max(worst, d)
            #expect(d <= Self.tolerance, "\(c.image) case \(c.case): max abs difference \(d)")
        }
        print("preprocessing against torchvision (\(index.generator)): max abs difference \(worst) over \(index.cases.count) cases")
    }

    /// End to end from the files: PNG exactly as above; JPEG within what ±1 per sample can make after mean/std.
    @Test func casesFromOurDecodeEqualTorchvision() throws {
        let index = try Fixtures.index()
        for c in index.cases {
            let ref = try #require(index.images.first { $0.file == c.image })
            let t = try c.preprocessing.apply(try ImageDecoder.decode(file: Fixtures.path(c.image)))
            let d = Self.maxDiff(t.data, try Fixtures.floats(c.tensor))
            let scale: Float = c.preprocessing.scaleToUnit ? 1 / 255 : 1
            let bound = ref.exact ? Self.tolerance : Float(DecodeTests.jpegTolerance) * scale / c.preprocessing.std.min()! + Self.tolerance
            #expect(d <= bound, "\(c.image) case \(c.case): max abs difference \(d), bound \(bound)")
        }
    }

    @Test func theManifestRecordHasStableFieldNames() throws {
        let p = Preprocessing(resize: .shorterSide(36), crop: .init(width: 32, height: 32), channels: .bgr,
                              mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(p), as: UTF8.self)
        #expect(json.contains(#""resize":{"shorter_side":36}"#), "\(json)")
        #expect(json.contains(#""crop":{"height":32,"width":32}"#) && json.contains(#""channels":"bgr""#)
                && json.contains(#""scale_to_unit":true"#) && json.contains(#""interpolation":"bilinear""#), "\(json)")
        #expect(try JSONDecoder().decode(Preprocessing.self, from: Data(json.utf8)) == p)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Preprocessing.self, from: Data(json.replacingOccurrences(of: "\"bgr\"", with: "\"cmyk\"").utf8))
        }
    }

    @Test func validationNamesEveryBadField() {
        func fields(_ p: Preprocessing) -> [String] { p.validate().map(\.field) }
        #expect(fields(Preprocessing(resize: .shorterSide(32), crop: .init(width: 28, height: 28))).isEmpty)
        #expect(fields(Preprocessing(resize: .shorterSide(-1))) == ["resize.shorter_side"])
        #expect(fields(Preprocessing(resize: .shorterSide(0))) == ["resize.shorter_side"])
        #expect(fields(Preprocessing(resize: .size(width: 10, height: -3))) == ["resize.height"])
        #expect(fields(Preprocessing(resize: .size(width: 1_000_000, height: 3))) == ["resize.width"])
        #expect(fields(Preprocessing(resize: .init(shorterSide: nil, width: 5, height: nil))) == ["resize"])
        #expect(fields(Preprocessing(resize: .init(shorterSide: 5, width: 5, height: 5))) == ["resize"])
        #expect(fields(Preprocessing(crop: .init(width: 0, height: 4))) == ["crop.width"])
        #expect(fields(Preprocessing(resize: .shorterSide(16), crop: .init(width: 20, height: 16))) == ["crop.width"])
        #expect(fields(Preprocessing(resize: .size(width: 40, height: 10), crop: .init(width: 20, height: 16))) == ["crop.height"])
        #expect(fields(Preprocessing(std: [0.2, 0, 0.2])) == ["std[1]"])
        #expect(fields(Preprocessing(std: [0.2, -1, .nan])) == ["std[1]", "std[2]"])
        #expect(fields(Preprocessing(mean: [0.5, .infinity, 0.5])) == ["mean[1]"])
        #expect(fields(Preprocessing(mean: [0.5, 0.5])) == ["mean"])
        #expect(fields(Preprocessing(channels: .gray, mean: [0.5, 0.5, 0.5], std: [1, 1, 1])) == ["mean", "std"])
        let invalid = Preprocessing(resize: .shorterSide(-4), std: [1, 0, 1])
        #expect(throws: Preprocessing.Invalid.self) { try invalid.check() }
        #expect(throws: Preprocessing.Invalid.self) { try invalid.apply(Image(width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: 1, count: 12))) }
        #expect("\(Preprocessing.Invalid(problems: invalid.validate()))".contains("resize.shorter_side: must be between 1 and 4096, got -4"))
    }

    @Test func aCropLargerThanTheImageIsAnErrorNotAPad() throws {
        let p = Preprocessing(crop: .init(width: 30, height: 10))
        let image = try ImageDecoder.decode(file: Fixtures.path("rgb.png"))   // 23×17
        #expect(throws: Preprocessing.Invalid.self) { try p.apply(image) }
        #expect(try Preprocessing(crop: .init(width: 23, height: 17)).apply(image).shape == [1, 3, 17, 23])
    }

    @Test func shapesFollowTorchvisionsResizeRule() throws {
        // Shorter side to N, the longer to ⌊N · long / short⌋.
        let p = Preprocessing(resize: .shorterSide(16))
        #expect(try p.outputShape(height: 17, width: 23) == [1, 3, 16, 21])
        #expect(try p.outputShape(height: 23, width: 17) == [1, 3, 21, 16])
        #expect(try p.outputShape(height: 7, width: 7) == [1, 3, 16, 16])
        #expect(try Preprocessing(resize: .size(width: 5, height: 9), channels: .gray).outputShape(height: 100, width: 3) == [1, 1, 9, 5])
        // Centre-crop offsets round half to even, as Python's round(): (17 − 10) / 2 = 3.5 → 4, (23 − 10) / 2 = 6.5 → 6.
        #expect(Preprocessing.roundHalfEven(3.5) == 4 && Preprocessing.roundHalfEven(6.5) == 6 && Preprocessing.roundHalfEven(2.5) == 2)
    }

    @Test func identityPreprocessingIsTheScaledImage() throws {
        let image = Image(width: 2, height: 1, channels: 3, pixels: [255, 0, 51, 0, 102, 255])
        let t = try Preprocessing().apply(image)
        #expect(t.shape == [1, 3, 1, 2])
        #expect(t.data == [1, 0, 0, 0.4, 0.2, 1])
        let bgr = try Preprocessing(channels: .bgr, scaleToUnit: false).apply(image)
        #expect(bgr.data == [51, 255, 0, 102, 255, 0])
        // Gray as Pillow's convert("L").
        let gray = try Preprocessing(channels: .gray, scaleToUnit: false).apply(image)
        let l0: Int = (19595 * 255 + 7471 * 51 + 32768) >> 16, l1: Int = (38470 * 102 + 7471 * 255 + 32768) >> 16
        #expect(gray.data == [Float(l0), Float(l1)])
    }
}
