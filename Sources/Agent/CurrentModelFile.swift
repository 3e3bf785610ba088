import ElasticModel
import Foundation
import ONNXExport

/// `model.onnx` in the device's data directory: the combination the device runs now, with its adapters and batch-norm
/// statistics, as a standalone ONNX model, rewritten after every adapt, apply or restore. It is written to a temporary file,
/// synced and renamed, so an application watching the path (onnxruntime, TensorRT, OpenVINO) always finds a whole
/// model, the previous one until the new one is complete.
enum CurrentModelFile {
    static let name = "model.onnx"

    static func path(_ configuration: AgentConfiguration) -> String {
        URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent(name).path
    }

    /// Exports `net` as it is now. A failure is logged and leaves the previous file; the job's result stands.
    static func write(_ net: ElasticNetwork, manifest: PackageManifest, environment: JobEnvironment) {
        let target = Self.path(environment.configuration)
        do {
            let bytes = try ModelExport(network: net, manifest: manifest).onnx()
            try ModelExport.writeAtomically(bytes, to: target)
            environment.log("agent: wrote \(target) (\(bytes.count) bytes, variants \(net.choiceIDs.joined(separator: ",")))")
        } catch {
            environment.log("agent: could not write \(target): \(error)")
        }
    }
}
