import Foundation
internal import COpenBLAS

/// A Float32 tensor in contiguous row-major (NCHW) storage; a value type, copied on write.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not hold \(data.count) values")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }
    /// Samples in the batch (the first dimension).
    public var n: Int { shape[0] }
    /// Values per sample.
    public var perSample: Int { count / max(shape[0], 1) }

    /// self += other, elementwise (same shape): one BLAS axpy.
    public mutating func add(_ other: Tensor) {
        precondition(other.count == count, "add: \(other.shape) to \(shape)")
        let n = Int32(count)
        other.data.withUnsafeBufferPointer { o in data.withUnsafeMutableBufferPointer { d in
            cblas_saxpy(n, 1, o.baseAddress!, 1, d.baseAddress!, 1)
        } }
    }

    /// Rows `range` of the first dimension.
    public func batch(_ range: Range<Int>) -> Tensor {
        let per = perSample
        return Tensor(shape: [range.count] + shape.dropFirst(), data: Array(data[(range.lowerBound * per)..<(range.upperBound * per)]))
    }
}

/// Seeded pseudo-random numbers (SplitMix64): the same seed gives the same weights and shuffles everywhere.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Float(next() >> 40) / Float(1 << 24), 1e-7)
        let u2 = Float(next() >> 40) / Float(1 << 24)
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
}

