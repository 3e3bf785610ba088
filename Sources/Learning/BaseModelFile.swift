/// A trained base model in one safetensors file: its weights under PyTorch names, and the architecture in the
/// metadata (`family` = resnet, `widths` = "16,32,64", `blocks_per_stage` = "1,2,2", `classes`), so a device
/// can rebuild the network before loading it.
public enum BaseModelFile {
    public static func write(_ model: Model, widths: [Int], blocksPerStage: [Int], to path: String, extra: [String: String] = [:]) throws {
        var meta = extra
        meta["family"] = "resnet"
        meta["widths"] = widths.map(String.init).joined(separator: ",")
        meta["blocks_per_stage"] = blocksPerStage.map(String.init).joined(separator: ",")
        meta["classes"] = String(model.head.outFeatures)
        try SafeTensors.write(model.namedTensors(), metadata: meta, to: path)
    }

    public static func read(path: String) throws -> (model: Model, metadata: [String: String]) {
        let (tensors, meta) = try SafeTensors.read(path: path)
        return try read(tensors: tensors, metadata: meta)
    }

    /// Rebuilds the network from decoded tensors and metadata; every tensor must fit the declared architecture.
    public static func read(tensors: [String: SafeTensor], metadata meta: [String: String]) throws -> (model: Model, metadata: [String: String]) {
        let path = "model"
        guard meta["family"] == "resnet" else { throw LearningError("\(path): only the resnet family is supported, found \(meta["family"] ?? "none")") }
        func ints(_ key: String) throws -> [Int] {
            guard let text = meta[key], case let v = text.split(separator: ",").compactMap({ Int($0) }), !v.isEmpty else {
                throw LearningError("\(path): metadata \(key) missing or malformed")
            }
            return v
        }
        let widths = try ints("widths"), blocks = try ints("blocks_per_stage")
        guard widths.count == blocks.count, widths.count <= 8, widths.allSatisfy({ (1...1024).contains($0) }), blocks.allSatisfy({ (1...16).contains($0) }),
              let classes = Int(meta["classes"] ?? "10"), (2...10_000).contains(classes) else {
            throw LearningError("\(path): architecture metadata out of range")
        }
        let model = Model.resnet(widths: widths, blocksPerStage: blocks, classes: classes)
        try model.load(tensors)
        guard tensors.count == model.store.entries.count else { throw LearningError("\(path): \(tensors.count - model.store.entries.count) tensors not in the architecture") }
        return (model, meta)
    }
}
