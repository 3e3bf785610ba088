/// The POSIX ustar subset a package needs: regular files with short names, read strictly.
///
/// Reading checks every header's checksum, magic and octal fields, that sizes stay inside the archive, that no
/// name repeats, and that the archive ends with its two zero blocks, so truncation and tampering are caught
/// before any content is trusted.
public enum TarArchive {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var bytes: [UInt8]
        public init(name: String, bytes: [UInt8]) { self.name = name; self.bytes = bytes }
    }

    static let block = 512

    public static func write(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        for e in entries {
            precondition(e.name.utf8.count < 100 && !e.name.isEmpty)
            var h = [UInt8](repeating: 0, count: block)
            func put(_ s: String, at offset: Int) { for (i, b) in s.utf8.enumerated() { h[offset + i] = b } }
            func octal(_ v: Int, width: Int) -> String {
                let digits = String(v, radix: 8)
                return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
            }
            put(e.name, at: 0)
            put(octal(0o644, width: 8), at: 100)
            put(octal(0, width: 8), at: 108)
            put(octal(0, width: 8), at: 116)
            put(octal(e.bytes.count, width: 12), at: 124)
            put(octal(0, width: 12), at: 136)   // mtime 0: the same content gives the same bytes
            h[156] = UInt8(ascii: "0")
            put("ustar", at: 257)
            put("00", at: 263)
            for i in 148..<156 { h[i] = UInt8(ascii: " ") }
            let sum = h.reduce(0) { $0 + Int($1) }
            put(octal(sum, width: 7), at: 148)
            h[155] = UInt8(ascii: " ")
            out += h
            out += e.bytes
            out += [UInt8](repeating: 0, count: (block - e.bytes.count % block) % block)
        }
        out += [UInt8](repeating: 0, count: 2 * block)
        return out
    }

    public static func read(_ bytes: [UInt8]) throws(PackageError) -> [Entry] {
        guard bytes.count % block == 0 else { throw .invalidArchive("size \(bytes.count) is not a multiple of 512 (truncated?)") }
        var entries: [Entry] = []
        var offset = 0
        while true {
            guard offset + block <= bytes.count else { throw .invalidArchive("ends without its end-of-archive blocks (truncated?)") }
            let h = Array(bytes[offset..<(offset + block)])
            if h.allSatisfy({ $0 == 0 }) {
                guard offset + 2 * block <= bytes.count, bytes[(offset + block)..<(offset + 2 * block)].allSatisfy({ $0 == 0 }) else {
                    throw .invalidArchive("missing the second end-of-archive block (truncated?)")
                }
                guard bytes[(offset + 2 * block)...].allSatisfy({ $0 == 0 }) else { throw .invalidArchive("data after the end of the archive") }
                return entries
            }
            let position = "entry \(entries.count + 1)"
            guard Array(h[257..<262]) == Array("ustar".utf8) else { throw .invalidArchive("\(position): not a ustar header") }
            guard let stored = octal(h[148..<156]) else { throw .invalidArchive("\(position): malformed checksum") }
            var check = h
            for i in 148..<156 { check[i] = UInt8(ascii: " ") }
            guard check.reduce(0, { $0 + Int($1) }) == stored else { throw .invalidArchive("\(position): header checksum mismatch") }
            guard h[156] == UInt8(ascii: "0") || h[156] == 0 else { throw .invalidArchive("\(position): only regular files are allowed") }
            guard h[345] == 0 else { throw .invalidArchive("\(position): long (prefixed) names are not allowed") }
            let nameBytes = h[0..<100].prefix { $0 != 0 }
            guard let name = String(validating: nameBytes, as: UTF8.self), !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else {
                throw .invalidArchive("\(position): file name must be a plain name")
            }
            guard let size = octal(h[124..<136]), size >= 0 else { throw .invalidArchive("\(name): malformed size") }
            let start = offset + block
            guard size <= bytes.count - start else { throw .invalidArchive("\(name): declares \(size) bytes, the archive ends first (truncated?)") }
            guard !entries.contains(where: { $0.name == name }) else { throw .invalidArchive("\(name): appears twice") }
            entries.append(Entry(name: name, bytes: Array(bytes[start..<(start + size)])))
            offset = start + (size + block - 1) / block * block
            guard offset <= bytes.count, bytes[(start + size)..<offset].allSatisfy({ $0 == 0 }) else {
                throw .invalidArchive("\(name): padding after the content is not zero (tampered?)")
            }
        }
    }

    /// An octal field: digits, then NUL or space padding.
    static func octal(_ field: ArraySlice<UInt8>) -> Int? {
        var value = 0, digits = 0, ended = false
        for b in field {
            if b == 0 || b == UInt8(ascii: " ") { if digits > 0 { ended = true }; continue }
            guard !ended, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(b), digits < 15 else { return nil }
            value = value * 8 + Int(b - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}
