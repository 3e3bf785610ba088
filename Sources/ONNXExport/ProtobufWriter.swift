/// The protobuf wire format, write side only: enough to serialise an ONNX ModelProto. The ONNX module keeps its
/// generated types internal (no protobuf type leaves it), so the exporter writes the few messages it needs by field
/// number; the ONNX loader (and `onnx.checker` in the tests) reads the result back.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    /// int64/int32 field (negative values as ten-byte two's complement, as protobuf does).
    mutating func int(_ field: Int, _ value: Int) {
        tag(field, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    mutating func float(_ field: Int, _ value: Float) {
        tag(field, 5)
        let b = value.bitPattern
        for k in 0..<4 { bytes.append(UInt8((b >> (8 * UInt32(k))) & 0xFF)) }
    }

    mutating func lengthDelimited(_ field: Int, _ value: [UInt8]) {
        tag(field, 2)
        varint(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        build(&inner)
        lengthDelimited(field, inner.bytes)
    }

    /// Appends another writer's fields as they are (its repeated fields stay repeated fields of this message).
    mutating func append(_ other: ProtobufWriter) { bytes += other.bytes }

    /// A packed repeated int64 field.
    mutating func packedInts(_ field: Int, _ values: [Int]) {
        var inner = ProtobufWriter()
        for v in values { inner.varint(UInt64(bitPattern: Int64(v))) }
        lengthDelimited(field, inner.bytes)
    }

    /// Float32 values little-endian, as ONNX's `raw_data` holds them.
    static func littleEndian(_ values: [Float]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(values.count * 4)
        for v in values {
            let b = v.bitPattern
            out.append(UInt8(b & 0xFF)); out.append(UInt8((b >> 8) & 0xFF))
            out.append(UInt8((b >> 16) & 0xFF)); out.append(UInt8(b >> 24))
        }
        return out
    }

    static func littleEndian(_ values: [Int]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(values.count * 8)
        for v in values {
            let b = UInt64(bitPattern: Int64(v))
            for k in 0..<8 { out.append(UInt8((b >> (8 * UInt64(k))) & 0xFF)) }
        }
        return out
    }
}
