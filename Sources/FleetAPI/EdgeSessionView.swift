import Foundation

/// What an edge server answers when a device opens (or reopens) its session: the half of the device's config it
/// now runs. `cut_shape` is (C, H, W) of the features the device sends to `POST /v1/edge/infer`.
public struct EdgeSessionView: Codable, Sendable, Equatable {
    public var deviceID: UUID
    public var configVersion: Int
    public var modelID: UUID
    public var splitAfterBlock: Int
    public var cutShape: [Int]
    public var classes: Int
    /// How many of the device's own tensors (adapters, batch norms after the cut) were installed.
    public var tensorsInstalled: Int

    public init(deviceID: UUID, configVersion: Int, modelID: UUID, splitAfterBlock: Int, cutShape: [Int], classes: Int, tensorsInstalled: Int) {
        self.deviceID = deviceID
        self.configVersion = configVersion
        self.modelID = modelID
        self.splitAfterBlock = splitAfterBlock
        self.cutShape = cutShape
        self.classes = classes
        self.tensorsInstalled = tensorsInstalled
    }

    enum CodingKeys: String, CodingKey {
        case classes
        case deviceID = "device_id"
        case configVersion = "config_version"
        case modelID = "model_id"
        case splitAfterBlock = "split_after_block"
        case cutShape = "cut_shape"
        case tensorsInstalled = "tensors_installed"
    }
}
