import Foundation

/// One tensor of a safetensors file: dtype, shape and little-endian raw bytes.
public struct SafeTensor: Sendable, Equatable {
    public enum DType: String, Sendable, CaseIterable {
        case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL

        public var size: Int {
            switch self {
            case .F64, .I64: 8
            case .F32, .I32: 4
            case .F16, .BF16, .I16: 2
            case .I8, .U8, .BOOL: 1
            }
        }
    }

    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public init(floats: [Float], shape: [Int]) {
        dtype = .F32
        self.shape = shape
        bytes = floats.withUnsafeBytes { Array($0) }
    }

    public init(uint8: [UInt8], shape: [Int]) {
        dtype = .U8
        self.shape = shape
        bytes = uint8
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The values of an F32 tensor (the platforms we run on are little-endian, as the format is).
    public func floats() throws -> [Float] {
        guard dtype == .F32 else { throw SafeTensorsError("expected F32, found \(dtype.rawValue)") }
        return bytes.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
    }
}

public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ d: String) { description = "safetensors: " + d }
}

/// Limits applied while reading an untrusted file.
public struct SafeTensorsLimits: Sendable {
    public var maxHeaderBytes: Int
    public static let `default` = SafeTensorsLimits(maxHeaderBytes: 100_000_000)
    public init(maxHeaderBytes: Int) { self.maxHeaderBytes = maxHeaderBytes }
}

/// The safetensors format: u64 little-endian header length N, N bytes of JSON
/// (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`), then the data.
/// Offsets are relative to the data section; tensors are laid out in name order without holes.
public enum SafeTensors {
    public static func encode(_ tensors: [String: SafeTensor], metadata: [String: String] = [:]) -> [UInt8] {
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += "\"__metadata__\":{" + metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",") + "}"
            first = false
        }
        var offset = 0
        var data: [UInt8] = []
        for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {
            if !first { header += "," }
            first = false
            header += "\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}"
            offset += t.bytes.count
            data += t.bytes
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + data.count)
        var n = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &n) { out += $0 }
        out += headerBytes
        out += data
        return out
    }

    /// Reads a file from untrusted bytes; any inconsistency is a `SafeTensorsError`, never a crash.
    public static func decode(_ bytes: [UInt8], limits: SafeTensorsLimits = .default) throws -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw SafeTensorsError("file is \(bytes.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(limits.maxHeaderBytes) else { throw SafeTensorsError("header length \(n) exceeds the limit of \(limits.maxHeaderBytes) bytes") }
        guard n <= UInt64(bytes.count - 8) else { throw SafeTensorsError("header length \(n) runs past the end of the \(bytes.count)-byte file (truncated?)") }
        let headerEnd = 8 + Int(n)
        let header: SafeTensorsHeader
        do {
            header = try JSONDecoder().decode(SafeTensorsHeader.self, from: Data(bytes[8..<headerEnd]))
        } catch let e as SafeTensorsError {
            throw e
        } catch {
            throw SafeTensorsError("header is not valid JSON of the safetensors form: \(error)")
        }
        let metadata = header.metadata
        var entries: [(name: String, dtype: SafeTensor.DType, shape: [Int], begin: Int, end: Int)] = []
        for (name, info) in header.tensors {
            guard let dtype = SafeTensor.DType(rawValue: info.dtype) else {
                throw SafeTensorsError("tensor '\(name)' has an unknown dtype \(info.dtype)")
            }
            guard info.shape.allSatisfy({ $0 >= 0 }) else { throw SafeTensorsError("tensor '\(name)' has a negative dimension") }
            guard info.dataOffsets.count == 2, info.dataOffsets[0] >= 0, info.dataOffsets[0] <= info.dataOffsets[1] else {
                throw SafeTensorsError("tensor '\(name)' has invalid data_offsets")
            }
            let (begin, end) = (info.dataOffsets[0], info.dataOffsets[1])
            var count = 1
            for d in info.shape {
                let (m, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw SafeTensorsError("tensor '\(name)' shape overflows") }
                count = m
            }
            let (size, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, size == end - begin else {
                throw SafeTensorsError("tensor '\(name)' is mis-shaped: \(info.shape) × \(dtype.rawValue) needs \(count &* dtype.size) bytes, offsets span \(end - begin)")
            }
            entries.append((name, dtype, info.shape, begin, end))
        }
        let dataSize = bytes.count - headerEnd
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        var tensors: [String: SafeTensor] = [:]
        for e in entries {
            guard e.begin == cursor else { throw SafeTensorsError("tensor '\(e.name)' leaves a hole or overlaps at offset \(cursor)") }
            guard e.end <= dataSize else { throw SafeTensorsError("tensor '\(e.name)' runs past the end of the data (truncated?)") }
            tensors[e.name] = SafeTensor(dtype: e.dtype, shape: e.shape, bytes: Array(bytes[(headerEnd + e.begin)..<(headerEnd + e.end)]))
            cursor = e.end
        }
        guard cursor == dataSize else { throw SafeTensorsError("\(dataSize - cursor) trailing bytes after the last tensor") }
        return (tensors, metadata)
    }

    public static func read(path: String, limits: SafeTensorsLimits = .default) throws -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw SafeTensorsError("cannot read \(path)") }
        return try decode(Array(data), limits: limits)
    }

    public static func write(_ tensors: [String: SafeTensor], metadata: [String: String] = [:], to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(encode(tensors, metadata: metadata))) else {
            throw SafeTensorsError("cannot write \(path)")
        }
    }

    private static func jsonString(_ s: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        let text = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\"]"
        return String(text.dropFirst().dropLast())
    }
}

/// The JSON header: tensor entries by name, plus the optional string map `__metadata__`.
struct SafeTensorsHeader: Decodable {
    struct Entry: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]

        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    var tensors: [String: Entry] = [:]
    var metadata: [String: String] = [:]

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        for key in c.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try c.decode([String: String].self, forKey: key)
            } else {
                tensors[key.stringValue] = try c.decode(Entry.self, forKey: key)
            }
        }
    }
}
