/// A decoded 8-bit image, height × width × channels (HWC), rows top to bottom; `channels` is 1 (gray) or 3 (RGB).
/// Alpha is dropped (not composited), as Pillow's `convert("RGB")` does; palettes are expanded; 16-bit samples are
/// rounded to 8 bits.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && (channels == 1 || channels == 3) && pixels.count == width * height * channels,
                     "image \(width)x\(height)x\(channels) with \(pixels.count) bytes")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The sample at row `y`, column `x`, channel `c`.
    public subscript(y: Int, x: Int, c: Int) -> UInt8 { pixels[(y * width + x) * channels + c] }
}

/// The container format, from the file's first bytes (never from its name).
public enum ImageFormat: String, Sendable, Equatable {
    case jpeg, png

    /// JPEG starts FF D8 FF, PNG with its 8-byte signature; anything else is not an image this module reads.
    public static func sniff(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, png.indices.allSatisfy({ bytes[$0] == png[$0] }) { return .png }
        return nil
    }
}

/// What a file's header declares, read without decoding (and without allocating for) its pixels.
public struct ImageHeader: Sendable, Equatable {
    public let format: ImageFormat
    public let width: Int
    public let height: Int
    /// Channels of the decoded image this module produces: 1 (gray) or 3 (color).
    public let channels: Int
}

/// Bounds on untrusted input, checked before anything is allocated for it.
public struct DecodeLimits: Sendable, Equatable {
    /// Largest width × height × channels of a decoded image (the decoded buffer's size in bytes).
    public var maxSamples: Int
    /// Largest file (or byte buffer) read.
    public var maxFileBytes: Int

    /// 64 Mi samples (a 4096×4096 RGB image is 48 Mi) and 64 MiB of file.
    public static let `default` = DecodeLimits(maxSamples: 64 << 20, maxFileBytes: 64 << 20)

    public init(maxSamples: Int, maxFileBytes: Int) {
        self.maxSamples = maxSamples
        self.maxFileBytes = maxFileBytes
    }
}

/// Why an image was not decoded; `source` is the file path (or the name given for a byte buffer).
public struct ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The file could not be read (missing, a directory, permissions).
        case unreadable
        /// Zero bytes.
        case empty
        /// Neither a JPEG nor a PNG signature.
        case notAnImage = "not_an_image"
        /// The header or the file exceeds `DecodeLimits`.
        case tooLarge = "too_large"
        /// A valid image of a kind this module does not decode (CMYK JPEG).
        case unsupported
        /// Damaged or truncated data.
        case corrupt
    }

    public let source: String
    public let kind: Kind
    public let message: String

    public init(_ source: String, _ kind: Kind, _ message: String) {
        self.source = source
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}
