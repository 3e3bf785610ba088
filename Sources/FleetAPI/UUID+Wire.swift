import Foundation

// UUIDs are lower case on the wire (bodies, `Location`, cursors alike). Foundation encodes a UUID as its upper-case
// `uuidString`, and JSONEncoder has no strategy for UUIDs, so the keyed container gets overloads that synthesized
// (and hand-written) `encode(to:)` bodies pick over the generic one: every wire type that holds a UUID, an optional
// UUID or a UUID list encodes it in lower case, whichever encoder runs. Decoding is untouched: `UUID(uuidString:)`
// accepts either case.
extension KeyedEncodingContainer {
    public mutating func encode(_ value: UUID, forKey key: Key) throws {
        try encode(value.uuidString.lowercased(), forKey: key)
    }

    public mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        guard let value else { return }
        try encode(value.uuidString.lowercased(), forKey: key)
    }

    public mutating func encode(_ value: [UUID], forKey key: Key) throws {
        try encode(value.map { $0.uuidString.lowercased() }, forKey: key)
    }

    public mutating func encodeIfPresent(_ value: [UUID]?, forKey key: Key) throws {
        guard let value else { return }
        try encode(value.map { $0.uuidString.lowercased() }, forKey: key)
    }
}
