import CPNG

/// 8-bit images to PNG, with libpng's simplified `png_image` API (its setjmp stays inside libpng: a failure is a
/// return value, no longjmp crosses Swift frames). For tools that write frames a device's agent then reads — the
/// demo's spools — so the files are what any camera pipeline would write, decoded by the same library.
public enum ImageEncoder {
    public static func png(_ image: Image) throws -> [UInt8] {
        // Deflate grows incompressible data by a small fraction; the chunks add under 100 bytes. When the buffer is
        // still too small, libpng answers 0 with the size it needs, and the second try has that.
        var capacity = image.pixels.count + image.pixels.count / 8 + image.height + 1024
        for _ in 0..<2 {
            var png = png_image()
            png.version = UInt32(PNG_IMAGE_VERSION)
            png.width = UInt32(image.width)
            png.height = UInt32(image.height)
            png.format = image.channels == 3 ? PNG.flagColor : 0
            defer { png_image_free(&png) }
            var out = [UInt8](repeating: 0, count: capacity)
            var size = capacity
            let ok = out.withUnsafeMutableBytes { o in
                image.pixels.withUnsafeBytes { p in
                    png_image_write_to_memory(&png, o.baseAddress, &size, 0, p.baseAddress, Int32(image.width * image.channels), nil)
                }
            }
            if ok != 0 { return Array(out.prefix(size)) }
            guard size > capacity else {
                throw ImageError("PNG encoder", .corrupt, "could not encode a \(image.width)x\(image.height) image: \(PNG.message(&png))")
            }
            capacity = size
        }
        throw ImageError("PNG encoder", .corrupt, "could not encode a \(image.width)x\(image.height) image: libpng asked for more room twice")
    }
}
