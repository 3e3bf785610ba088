import CPNG

/// 8-bit images to PNG, with libpng's simplified `png_image` API (its setjmp stays inside libpng: a failure is a
/// return value, no longjmp crosses Swift frames). For tools that write frames a device's agent then reads — the
/// demo's spools — so the files are what any camera pipeline would write, decoded by the same library.
public enum ImageEncoder {
    public static func png(_ image: Image) throws -> [UInt8] {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = image.channels == 3 ? PNG.flagColor : 0
        let rowStride = Int32(image.width * image.channels)
        // Deflate never grows data by more than a small fraction; the signature, IHDR, IDAT and IEND chunks add
        // under 100 bytes. libpng says (0 and the needed size) if the buffer is too small, and then it is grown.
        var capacity = image.pixels.count + image.pixels.count / 8 + image.height + 1024
        while true {
            var out = [UInt8](repeating: 0, count: capacity)
            var size = capacity
            let ok = out.withUnsafeMutableBytes { o in
                image.pixels.withUnsafeBytes { p in
                    png_image_write_to_memory(&png, o.baseAddress, &size, 0, p.baseAddress, rowStride, nil)
                }
            }
            if ok != 0 {
                png_image_free(&png)
                return Array(out.prefix(size))
            }
            guard size > capacity else {
                let message = PNG.message(&png)
                png_image_free(&png)
                throw ImageError("PNG encoder", .corrupt, "could not encode a \(image.width)x\(image.height) image: \(message)")
            }
            capacity = size
            png_image_free(&png)
            png = png_image()
            png.version = UInt32(PNG_IMAGE_VERSION)
            png.width = UInt32(image.width)
            png.height = UInt32(image.height)
            png.format = image.channels == 3 ? PNG.flagColor : 0
        }
    }
}
