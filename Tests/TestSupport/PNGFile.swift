/// Grayscale 8-bit PNG files written with stored (uncompressed) deflate blocks: valid PNG that libpng decodes,
/// and exact, for tests that need real image files (the agent's image folders, a spool a test feeds frames into).
public enum PNGFile {
    /// A grayscale 8-bit PNG of `pixels` (rows top to bottom).
    public static func gray(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] { encode(width: width, height: height, rgb: false, pixels: pixels) }

    /// An 8-bit RGB PNG of `pixels` (HWC, rows top to bottom).
    public static func rgb(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] { encode(width: width, height: height, rgb: true, pixels: pixels) }

    static func encode(width: Int, height: Int, rgb: Bool, pixels: [UInt8]) -> [UInt8] {
        let row = width * (rgb ? 3 : 1)
        var raw: [UInt8] = []
        for y in 0..<height { raw.append(0); raw.append(contentsOf: pixels[(y * row)..<((y + 1) * row)]) }
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
        let ihdr = be32(UInt32(width)) + be32(UInt32(height)) + [8, rgb ? 2 : 0, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", [])
    }

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
}
