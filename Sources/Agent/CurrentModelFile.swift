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
        guard let file = render(net, manifest: manifest, environment: environment) else { return }
        write(file, environment: environment)
    }

    /// `net` exported as it is now, to be written once what it runs is installed (`write(_:environment:)`); nil,
    /// logged, when the export fails.
    static func render(_ net: ElasticNetwork, manifest: PackageManifest, environment: JobEnvironment) -> Rendered? {
        do {
            return Rendered(bytes: try ModelExport(network: net, manifest: manifest).onnx(), variants: net.choiceIDs)
        } catch {
            environment.log("agent: could not export \(Self.path(environment.configuration)): \(error)")
            return nil
        }
    }

    /// Replaces the file with `file` (write, sync, rename). A failure is logged and leaves the previous file.
    static func write(_ file: Rendered, environment: JobEnvironment) {
        let target = Self.path(environment.configuration)
        do {
            try ModelExport.writeAtomically(file.bytes, to: target)
            environment.log("agent: wrote \(target) (\(file.bytes.count) bytes, variants \(file.variants.joined(separator: ",")))")
        } catch {
            environment.log("agent: could not write \(target): \(error)")
        }
    }

    /// An exported model not yet written.
    struct Rendered: Sendable {
        var bytes: [UInt8]
        var variants: [String]
    }
}
