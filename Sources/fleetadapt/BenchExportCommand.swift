import ArgumentParser
import CommandSupport
import ElasticModel
import Foundation
import Learning
import ONNXExport

/// `fleetadapt bench export`: what exporting costs, and onnxruntime's latency on the export beside the engine's.
struct BenchExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export time and ONNX file size of a combination, and its latency in onnxruntime beside FleetAdapt's engine.",
        discussion: HelpText.reflow("""
            Both run single-threaded (the engine's BLAS uses one thread; onnxruntime gets intra/inter-op 1) on the same
            input, in the same run: medians of --iterations runs after warm-up. Also the largest logit difference.
            Needs the onnxruntime virtualenv (created by deploy/test.sh):
              python3 -m venv .build/venv-onnx && .build/venv-onnx/bin/pip install onnxruntime onnx numpy
              fleetadapt bench export --package /tmp/fashion.fap --variants blocks.1=s50
            """))

    @Option(help: "The elastic package (.fap).")
    var package: String

    @Option(help: "Variants by block, e.g. blocks.0=s0,blocks.1=s50 (blocks not named keep s0).")
    var variants: String?

    @Option(help: "Adapted tensors (safetensors) to install.")
    var adapters: String?

    @Option(help: "Batch size of the timed inferences.")
    var batch: Int = 1

    @Option(help: "Timed runs per figure.")
    var iterations: Int = 50

    @Option(help: "The virtualenv's python with onnx, onnxruntime and numpy.")
    var python: String = ".build/venv-onnx/bin/python"

    @Option(help: "The checker script.")
    var checker: String = "deploy/tools/onnx_check.py"

    func run() throws {
        guard batch >= 1, iterations >= 1 else { throw ValidationError("--batch and --iterations must be positive") }
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ValidationError("\(python) not found: python3 -m venv .build/venv-onnx && .build/venv-onnx/bin/pip install onnxruntime onnx numpy")
        }
        let export = try ModelExport(package: try ElasticPackage.read(path: self.package))
        try export.compose(try variants.map(ModelExport.parseVariants) ?? [:])
        if let adapters { try export.install(adaptersFile: adapters) }
        func median(_ body: () throws -> Void) rethrows -> Double {
            for _ in 0..<3 { try body() }
            var t: [Double] = []
            for _ in 0..<iterations {
                let s = Date()
                try body()
                t.append(Date().timeIntervalSince(s) * 1000)
            }
            return t.sorted()[t.count / 2]
        }
        var bytes: [UInt8] = []
        let exportMs = try median { bytes = try export.onnx() }
        let dir = NSTemporaryDirectory() + "fleetadapt-bench-export-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/model.onnx", input = dir + "/in.f32", output = dir + "/out.f32"
        try ModelExport.writeAtomically(bytes, to: model)
        let x = try Self.input(shape: export.network.model.inputShape, batch: batch)
        try x.data.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: input))
        let net = export.network.model
        let engineMs = median { _ = net.forward(x, training: false) }
        let logits = net.forward(x, training: false).data

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [checker, model, "--input", input, "--shape", x.shape.map(String.init).joined(separator: ","),
                             "--output", output, "--repeat", String(iterations)]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let reportData = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        struct Report: Decodable {
            var onnxruntime: String
            var latencyMs: Double
            enum CodingKeys: String, CodingKey {
                case onnxruntime
                case latencyMs = "latency_ms"
            }
        }
        guard process.terminationStatus == 0, let report = try? JSONDecoder().decode(Report.self, from: reportData) else {
            throw ValidationError("onnx_check.py failed (exit \(process.terminationStatus))")
        }
        let ortMs = report.latencyMs
        let theirs = try Data(contentsOf: URL(fileURLWithPath: output)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let diff = zip(theirs, logits).map { abs($0 - $1) }.max() ?? .nan
        let ids = export.network.choiceIDs.joined(separator: ",")
        print("package \(export.manifest.name) (\(export.manifest.architecture.family.rawValue)), variants \(ids), adapters \(adapters ?? "none")")
        print(String(format: "export:              %8.2f ms   file %d bytes (%.1f KiB)", exportMs, bytes.count, Double(bytes.count) / 1024))
        print(String(format: "engine, batch %-4d   %8.3f ms", batch, engineMs))
        print("onnxruntime \(report.onnxruntime), batch \(batch): "
              + String(format: "%8.3f ms   (%.2f× the engine's time; measured from Python, call overhead included)", ortMs, ortMs / engineMs))
        print(String(format: "max |logit difference|: %.3g (full_check passed)", diff))
    }

    /// The timed input: Fashion-MNIST test images for a 1×28×28 network (the built-in families), else seeded values in
    /// [−1, 1) of the package's input shape (an imported network; latency does not depend on the values).
    static func input(shape: [Int], batch: Int) throws -> Tensor {
        if shape == [1, 28, 28] { return try FashionMNIST.load(split: .test, limit: batch).tensor(Array(0..<batch)) }
        var rng = SeededRandom(seed: 7)
        let count = batch * shape.reduce(1, *)
        return Tensor(shape: [batch] + shape, data: (0..<count).map { _ in Float.random(in: -1..<1, using: &rng) })
    }
}
