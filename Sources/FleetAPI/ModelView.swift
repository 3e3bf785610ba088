import Foundation

/// A published model as the API shows it.
public struct ModelView: Codable, Sendable, Equatable {
    public struct TensorInfo: Codable, Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public init(name: String, shape: [Int]) { self.name = name; self.shape = shape }
    }

    /// What the package declares: its architecture metadata and tensors.
    public struct Manifest: Codable, Sendable, Equatable {
        public var metadata: [String: String]
        public var tensors: [TensorInfo]
        public var parameterCount: Int

        public init(metadata: [String: String], tensors: [TensorInfo], parameterCount: Int) {
            self.metadata = metadata
            self.tensors = tensors
            self.parameterCount = parameterCount
        }

        enum CodingKeys: String, CodingKey {
            case metadata, tensors
            case parameterCount = "parameter_count"
        }
    }

    public var id: UUID
    public var name: String
    public var sha256: String
    public var sizeBytes: Int
    public var combinationCount: Int
    public var manifest: Manifest
    public var createdAt: Date

    public init(id: UUID, name: String, sha256: String, sizeBytes: Int, combinationCount: Int, manifest: Manifest, createdAt: Date) {
        self.id = id
        self.name = name
        self.sha256 = sha256
        self.sizeBytes = sizeBytes
        self.combinationCount = combinationCount
        self.manifest = manifest
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, sha256, manifest
        case sizeBytes = "size_bytes"
        case combinationCount = "combination_count"
        case createdAt = "created_at"
    }
}
