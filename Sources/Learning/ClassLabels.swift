/// The class labels of a set of images, one integer per image. Stored as bytes while every label fits one (the
/// built-in datasets' ten classes, any folder of up to 256 classes), as 32-bit integers otherwise (a 1000-class
/// ImageNet head's teacher answers), so the common case costs what it always did and wide heads need no cap.
public struct ClassLabels: RandomAccessCollection, Sendable, Equatable, ExpressibleByArrayLiteral {
    enum Storage: Sendable, Equatable {
        case narrow([UInt8])
        case wide([Int32])
    }
    let storage: Storage

    /// The largest label the wide storage holds.
    public static let maxLabel = Int(Int32.max)

    public init(_ bytes: [UInt8]) { storage = .narrow(bytes) }

    /// Labels 0...`maxLabel`; bytes when all are below 256.
    public init<S: Sequence>(_ values: S) where S.Element: BinaryInteger {
        let all = values.map { Int($0) }
        precondition(all.allSatisfy { (0...Self.maxLabel).contains($0) }, "class labels are 0...\(Self.maxLabel)")
        storage = all.allSatisfy { $0 < 256 } ? .narrow(all.map { UInt8($0) }) : .wide(all.map { Int32($0) })
    }

    public init(arrayLiteral elements: Int...) { self.init(elements) }

    public var startIndex: Int { 0 }
    public var endIndex: Int {
        switch storage {
        case .narrow(let b): b.count
        case .wide(let w): w.count
        }
    }

    public subscript(i: Int) -> Int {
        switch storage {
        case .narrow(let b): Int(b[i])
        case .wide(let w): Int(w[i])
        }
    }

    /// The labels of images `range` (as bytes again when those all fit one).
    public func slice(_ range: Range<Int>) -> ClassLabels {
        switch storage {
        case .narrow(let b): ClassLabels(Array(b[range]))
        case .wide(let w): ClassLabels(w[range])
        }
    }

    /// The labels as bytes when every one fits one (how `LocalDataset` has always stored them).
    public var bytes: [UInt8]? {
        if case .narrow(let b) = storage { return b }
        return nil
    }

    /// The labels as the safetensors tensor `LocalDataset` writes: U8 while they fit a byte, else I32.
    public var tensor: SafeTensor {
        switch storage {
        case .narrow(let b): return SafeTensor(uint8: b, shape: [b.count])
        case .wide(let w):
            var raw: [UInt8] = []
            raw.reserveCapacity(4 * w.count)
            for v in w { withUnsafeBytes(of: v.littleEndian) { raw += $0 } }
            return SafeTensor(dtype: .I32, shape: [w.count], bytes: raw)
        }
    }

    /// Reads what `tensor` wrote (U8 or I32 of shape `[count]`); nil for anything else or a negative label.
    public init?(tensor t: SafeTensor, count: Int) {
        guard t.shape == [count] else { return nil }
        switch t.dtype {
        case .U8: storage = .narrow(t.bytes)
        case .I32:
            guard t.bytes.count == 4 * count else { return nil }
            let values = (0..<count).map { i in
                Int32(bitPattern: t.bytes[(4 * i)..<(4 * i + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            }
            guard values.allSatisfy({ $0 >= 0 }) else { return nil }
            storage = values.allSatisfy { $0 < 256 } ? .narrow(values.map { UInt8($0) }) : .wide(values)
        default: return nil
        }
    }
}
