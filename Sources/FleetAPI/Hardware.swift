/// The compute a device offers; `class` names a hardware family whose power draw the planner knows.
public struct Hardware: Codable, Sendable, Equatable {
    public var `class`: String
    public var gflops: Double
    public var memoryMB: Int

    public init(class hardwareClass: String, gflops: Double, memoryMB: Int) {
        self.class = hardwareClass
        self.gflops = gflops
        self.memoryMB = memoryMB
    }

    enum CodingKeys: String, CodingKey {
        case `class`, gflops
        case memoryMB = "memory_mb"
    }

    /// `memory_mb` is read as a number and must be whole, so `1.5` is reported against its field
    /// (Foundation's own Int decoding loses the path in that case).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.class = try c.decode(String.self, forKey: .class)
        gflops = try c.decode(Double.self, forKey: .gflops)
        let memory = try c.decode(Double.self, forKey: .memoryMB)
        guard memory.isFinite, memory == memory.rounded(), abs(memory) < 1e15 else {
            throw DecodingError.typeMismatch(Int.self, .init(codingPath: c.codingPath + [CodingKeys.memoryMB],
                                                             debugDescription: "memory_mb must be a whole number"))
        }
        memoryMB = Int(memory)
    }

    /// Largest compute a device may declare: 1 PFLOP/s is far past any edge board.
    public static let maxGFLOPS = 1_000_000.0
    /// 16 TiB in MiB: anything above is a typo, not a device.
    public static let maxMemoryMB = 16 * 1024 * 1024

    /// A hardware class is a lowercase slug such as `jetson-tx2` or `raspberry-pi-4`:
    /// letters, digits and single hyphens, 1–63 characters, starting with a letter.
    public static func isValidClass(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard (1...63).contains(bytes.count), let first = bytes.first, (97...122).contains(first),
              bytes.last != UInt8(ascii: "-") else { return false }
        var previousHyphen = false
        for b in bytes {
            let isHyphen = b == UInt8(ascii: "-")
            guard (97...122).contains(b) || (48...57).contains(b) || isHyphen else { return false }
            if isHyphen && previousHyphen { return false }
            previousHyphen = isHyphen
        }
        return true
    }

    public static let minGFLOPS = 0.001

    public func validate(into v: inout Validator, prefix: String = "hardware") {
        if !Self.isValidClass(self.class) {
            v.fail("\(prefix).class", "must be a lowercase slug of letters, digits and single hyphens (1–63 characters, starting with a letter), e.g. \"jetson-tx2\"")
        }
        // At least 1 MFLOP/s: slower claims make every latency estimate overflow.
        v.number(gflops, "\(prefix).gflops", min: Self.minGFLOPS, max: Self.maxGFLOPS)
        v.number(Double(memoryMB), "\(prefix).memory_mb", min: 1, max: Double(Self.maxMemoryMB))
    }
}
