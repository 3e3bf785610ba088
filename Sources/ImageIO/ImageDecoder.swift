import CJPEG
import CPNG
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// JPEG (libjpeg-turbo's TurboJPEG API) and PNG (libpng's simplified `png_image` API) to an 8-bit HWC `Image`.
///
/// Untrusted input: the file size is bounded before reading, the header is read first and an image whose
/// width × height × channels exceeds `DecodeLimits.maxSamples` is refused before its buffer is allocated.
/// Both libraries report errors as return values (neither calls `exit()` nor needs a `setjmp` in Swift); damaged,
/// truncated (a JPEG's premature end is a libjpeg warning that TurboJPEG's STOPONWARNING makes an error), zero-byte
/// and non-image input is an `ImageError` naming the source, never a crash.
public enum ImageDecoder {
    /// Reads `path` (a regular file, symlinks followed) into memory, refusing files larger than `maxBytes`.
    public static func readFile(_ path: String, maxBytes: Int) throws -> [UInt8] {
        // O_NONBLOCK: a FIFO dropped into a spool folder must not block the reader; it is refused below.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError(path, .unreadable, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ImageError(path, .unreadable, "cannot stat: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ImageError(path, .unreadable, "not a regular file") }
        let declared = Int(st.st_size)
        guard declared <= maxBytes else {
            throw ImageError(path, .tooLarge, "file of \(declared) bytes exceeds the limit of \(maxBytes) bytes")
        }
        // Read at most maxBytes + 1, whatever the size said (the file may grow while it is read).
        var bytes = [UInt8](repeating: 0, count: min(declared, maxBytes) + 1)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buf in read(fd, buf.baseAddress! + filled, buf.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError(path, .unreadable, "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            filled += n
            if filled == bytes.count && filled <= maxBytes { bytes.append(contentsOf: [UInt8](repeating: 0, count: min(4096, maxBytes + 1 - filled))) }
        }
        guard filled <= maxBytes else { throw ImageError(path, .tooLarge, "file exceeds the limit of \(maxBytes) bytes") }
        bytes.removeLast(bytes.count - filled)
        return bytes
    }

    /// Decodes the file at `path`; every failure is an `ImageError` whose `source` is `path`.
    public static func decode(file path: String, limits: DecodeLimits = .default) throws -> Image {
        try decode(try readFile(path, maxBytes: limits.maxFileBytes), source: path, limits: limits)
    }

    /// What the bytes declare (format, size, channels) without decoding the pixels.
    public static func header(_ bytes: [UInt8], source: String) throws -> ImageHeader {
        try bytes.withUnsafeBytes { buf in
            switch try format(buf, source: source) {
            case .jpeg: return try JPEG.header(buf, source: source).header
            case .png: return try PNG.withHeader(buf, source: source) { h, _ in h }
            }
        }
    }

    /// Decodes JPEG or PNG bytes (`source` names them in errors).
    public static func decode(_ bytes: [UInt8], source: String, limits: DecodeLimits = .default) throws -> Image {
        guard bytes.count <= limits.maxFileBytes else {
            throw ImageError(source, .tooLarge, "\(bytes.count) bytes exceed the limit of \(limits.maxFileBytes) bytes")
        }
        return try bytes.withUnsafeBytes { buf in
            switch try format(buf, source: source) {
            case .jpeg: return try JPEG.decode(buf, source: source, limits: limits)
            case .png: return try PNG.decode(buf, source: source, limits: limits)
            }
        }
    }

    static func format(_ buf: UnsafeRawBufferPointer, source: String) throws -> ImageFormat {
        guard buf.count > 0 else { throw ImageError(source, .empty, "empty file (0 bytes)") }
        guard let f = ImageFormat.sniff(buf) else { throw ImageError(source, .notAnImage, "not a JPEG or PNG image (unknown signature)") }
        return f
    }

    /// width × height × channels, refused past `limit` (or on overflow) before anything is allocated.
    static func checkSize(width: Int, height: Int, channels: Int, limit: Int, source: String) throws -> Int {
        guard width > 0, height > 0 else { throw ImageError(source, .corrupt, "header declares a \(width)x\(height) image") }
        let (wh, o1) = width.multipliedReportingOverflow(by: height)
        let (n, o2) = wh.multipliedReportingOverflow(by: channels)
        guard !o1, !o2, n <= limit else {
            throw ImageError(source, .tooLarge, "header declares \(width)x\(height)x\(channels) samples, over the limit of \(limit)")
        }
        return n
    }
}

/// TurboJPEG: errors come back as -1 with a message on the handle.
enum JPEG {
    struct Parsed { let header: ImageHeader; let pixelFormat: Int32 }

    static func message(_ handle: tjhandle?) -> String {
        guard let c = tjGetErrorStr2(handle) else { return "unknown libjpeg error" }
        return String(cString: c)
    }

    static func withHandle<T>(_ source: String, _ body: (tjhandle) throws -> T) throws -> T {
        guard let handle = tjInitDecompress() else { throw ImageError(source, .corrupt, "cannot create a JPEG decompressor: \(message(nil))") }
        defer { tjDestroy(handle) }
        return try body(handle)
    }

    static func header(_ buf: UnsafeRawBufferPointer, source: String) throws -> Parsed {
        try withHandle(source) { try header(buf, handle: $0, source: source) }
    }

    static func header(_ buf: UnsafeRawBufferPointer, handle: tjhandle, source: String) throws -> Parsed {
        var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let base = buf.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard tjDecompressHeader3(handle, base, UInt(buf.count), &w, &h, &subsampling, &colorspace) == 0 else {
            throw ImageError(source, .corrupt, "corrupt JPEG header: \(message(handle))")
        }
        switch colorspace {
        case Int32(TJCS_GRAY.rawValue):
            return Parsed(header: ImageHeader(format: .jpeg, width: Int(w), height: Int(h), channels: 1), pixelFormat: Int32(TJPF_GRAY.rawValue))
        case Int32(TJCS_CMYK.rawValue), Int32(TJCS_YCCK.rawValue):
            throw ImageError(source, .unsupported, "CMYK JPEG is not supported (convert it to RGB)")
        default:
            return Parsed(header: ImageHeader(format: .jpeg, width: Int(w), height: Int(h), channels: 3), pixelFormat: Int32(TJPF_RGB.rawValue))
        }
    }

    static func decode(_ buf: UnsafeRawBufferPointer, source: String, limits: DecodeLimits) throws -> Image {
        try withHandle(source) { handle in
            let p = try header(buf, handle: handle, source: source)
            let h = p.header
            let n = try ImageDecoder.checkSize(width: h.width, height: h.height, channels: h.channels, limit: limits.maxSamples, source: source)
            var pixels = [UInt8](repeating: 0, count: n)
            // Accurate integer DCT and fancy upsampling (TurboJPEG's defaults, what Pillow uses); a warning (premature
            // end of data, corrupt entropy data) is an error; a progressive image with more than 500 scans is refused.
            let flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS | TJFLAG_ACCURATEDCT
            let base = buf.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let rc = pixels.withUnsafeMutableBufferPointer { out in
                tjDecompress2(handle, base, UInt(buf.count), out.baseAddress, Int32(h.width), 0, Int32(h.height), p.pixelFormat, flags)
            }
            guard rc == 0 else { throw ImageError(source, .corrupt, "corrupt or truncated JPEG: \(message(handle))") }
            return Image(width: h.width, height: h.height, channels: h.channels, pixels: pixels)
        }
    }
}

/// libpng's simplified API: `png_image_*` return 0 on error with the reason in `image.message` (libpng's own
/// setjmp is inside `png_safe_execute`; no longjmp crosses Swift frames).
enum PNG {
    static let flagAlpha: UInt32 = 0x01, flagColor: UInt32 = 0x02
    static let flag16BitSRGB: UInt32 = 0x04

    static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Reads the header into a `png_image` (freed afterwards) and passes it, with the decoded header, to `body`.
    static func withHeader<T>(_ buf: UnsafeRawBufferPointer, source: String, _ body: (ImageHeader, inout png_image) throws -> T) throws -> T {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(&image, buf.baseAddress, buf.count) != 0 else {
            let m = message(&image)
            png_image_free(&image)
            throw ImageError(source, .corrupt, "corrupt PNG header: \(m)")
        }
        defer { png_image_free(&image) }
        let header = ImageHeader(format: .png, width: Int(image.width), height: Int(image.height),
                                 channels: image.format & flagColor != 0 ? 3 : 1)
        return try body(header, &image)
    }

    static func decode(_ buf: UnsafeRawBufferPointer, source: String, limits: DecodeLimits) throws -> Image {
        try withHeader(buf, source: source) { h, image in
            // Keep alpha in the read format and drop it afterwards: asking libpng for a format without alpha would
            // composite onto a background, where Pillow's convert("RGB") just drops it.
            let alpha = image.format & flagAlpha != 0
            let decoded = h.channels + (alpha ? 1 : 0)
            let n = try ImageDecoder.checkSize(width: h.width, height: h.height, channels: decoded, limit: limits.maxSamples, source: source)
            image.format = (h.channels == 3 ? flagColor : 0) | (alpha ? flagAlpha : 0)   // 8-bit sRGB, not color-mapped
            // A 16-bit file without gAMA/sRGB is taken as sRGB (libpng's default would take it as linear and apply
            // the sRGB curve going to 8 bits); then 16 → 8 bits is plain rounding.
            image.flags |= flag16BitSRGB
            var out = [UInt8](repeating: 0, count: n)
            let ok = out.withUnsafeMutableBytes { raw in
                png_image_finish_read(&image, nil, raw.baseAddress, Int32(h.width * decoded), nil)
            }
            guard ok != 0 else { throw ImageError(source, .corrupt, "corrupt or truncated PNG: \(message(&image))") }
            guard alpha else { return Image(width: h.width, height: h.height, channels: h.channels, pixels: out) }
            var pixels = [UInt8](repeating: 0, count: h.width * h.height * h.channels)
            var o = 0
            for i in stride(from: 0, to: n, by: decoded) {
                for c in 0..<h.channels { pixels[o + c] = out[i + c] }
                o += h.channels
            }
            return Image(width: h.width, height: h.height, channels: h.channels, pixels: pixels)
        }
    }
}
