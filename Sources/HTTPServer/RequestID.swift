import Synchronization

/// Request ids tie an access-log line, a problem body and the caller's own logs together.
public enum RequestID {
    /// Accepts a caller's id only if it is short and log-safe, so it can't forge log lines or bloat headers.
    public static func isValid(_ candidate: String) -> Bool {
        let utf8 = candidate.utf8
        guard !utf8.isEmpty, utf8.count <= 128 else { return false }
        for c in utf8 {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                continue
            default:
                return false
            }
        }
        return true
    }

    private static let seed = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
    private static let counter = Atomic<UInt64>(0)

    /// A version-4-shaped UUID string. Foundation's `UUID()` opens and reads /dev/urandom on every call (three
    /// syscalls per request on Linux); ids need to be unique and unguessable enough for logs, not secret, so they
    /// come from a per-process random seed mixed with a counter through SplitMix64 instead.
    public static func generate() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        var high = splitMix(seed.0 &+ n &* 0x9E37_79B9_7F4A_7C15)
        var low = splitMix(seed.1 ^ n)
        high = (high & ~0xF000) | 0x4000                           // version 4
        low = (low & ~(0xC000_0000_0000_0000 as UInt64)) | 0x8000_0000_0000_0000  // RFC 4122 variant
        return String(unsafeUninitializedCapacity: 36) { buffer in
            let hex: StaticString = "0123456789abcdef"
            var out = 0
            func put(_ value: UInt64, _ nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    buffer[out] = hex.utf8Start[Int((value >> UInt64(shift)) & 0xF)]
                    out += 1
                }
            }
            func dash() {
                buffer[out] = UInt8(ascii: "-")
                out += 1
            }
            put(high >> 32, 8); dash()
            put(high >> 16, 4); dash()
            put(high, 4); dash()
            put(low >> 48, 4); dash()
            put(low, 12)
            return out
        }
    }

    private static func splitMix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
