import ArgumentParser
import CommandSupport
import ElasticModel
import Foundation
import ONNXExport

/// `fleetadapt model export`: one combination of a package, with its adapters and statistics, as an ONNX file.
struct ModelExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a combination of a package (variants, adapters, batch-norm statistics) as a standalone ONNX model.",
        discussion: HelpText.reflow("""
            Opset 14 (IR 7), inference mode, input `input` (N×C×H×W, N dynamic), output `logits`; the package's
            preprocessing and class names are in metadata_props. With --split-after-block K, --part device writes
            input → `features` (the stem and blocks 0…K) and --part edge writes `features` → logits; running the
            two one after the other equals the whole. The file is written to a temporary file, synced and renamed:
            a refused export (unknown block or variant, adapters of another model, a split outside the network)
            leaves nothing behind. Examples:
              fleetadapt model export --package /tmp/fashion.fap --variants blocks.1=s50,blocks.3=skip --out /tmp/m.onnx
              fleetadapt model export --package /tmp/fashion.fap --adapters adapters.safetensors --split-after-block 1 --part device --out /tmp/dev.onnx
            """))

    @Option(help: "The elastic package (.fap).")
    var package: String

    @Option(help: "Variants by block, e.g. blocks.0=s0,blocks.1=s50 (blocks not named keep s0).")
    var variants: String?

    @Option(help: "A device config (JSON of GET /v1/devices/{id}/config): its variants and split point.")
    var config: String?

    @Option(help: "Adapted tensors (safetensors): a device's adapters and batch norms, or a domain's aggregate.")
    var adapters: String?

    // Unconditional: `--split-after-block -1` is the value −1, not an unknown option `-1`.
    @Option(parsing: .unconditional, help: "Split after this block (-1 = after the stem); needs --part.")
    var splitAfterBlock: Int?

    @Option(help: "whole, device (input → features) or edge (features → logits).")
    var part: String?

    @Option(help: "The ONNX file to write.")
    var out: String

    /// The part of a device config the export reads.
    struct ConfigFile: Decodable {
        struct Choice: Decodable { var block: String; var variant: String }
        struct Partition: Decodable {
            var splitAfterBlock: Int
            enum CodingKeys: String, CodingKey { case splitAfterBlock = "split_after_block" }
        }
        var variants: [Choice]
        var partition: Partition?
    }

    /// What is wrong without reading the package: a split before the stem, an unknown part, a split of the whole.
    /// (A split past the package's last block is known only once it is read.)
    func validate() throws {
        if let part, ExportPart(rawValue: part) == nil { throw ValidationError("--part: \(part) is not whole, device or edge") }
        if let k = splitAfterBlock {
            guard k >= -1 else {
                throw ValidationError("--split-after-block: \(k) is not a split point: -1 (after the stem) or a block index 0, 1, …")
            }
            guard let part, part != ExportPart.whole.rawValue else { throw ValidationError("--split-after-block needs --part device or --part edge") }
        }
    }

    func run() throws {
        do {
            try export()
        } catch let error as ONNXExportError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode.failure
        } catch let error as PackageError {
            FileHandle.standardError.write(Data("error: \(self.package): \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    func export() throws {
        guard variants == nil || config == nil else { throw ONNXExportError("give --variants or --config, not both") }
        let chosen: [String: String]
        var split = splitAfterBlock
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else { throw ONNXExportError("--config: cannot read \(config)") }
            let file: ConfigFile
            do { file = try JSONDecoder().decode(ConfigFile.self, from: data) } catch {
                throw ONNXExportError("--config: \(config) is not a device config (variants: [{block, variant}]): \(error)")
            }
            var map: [String: String] = [:]
            for c in file.variants {
                guard map[c.block] == nil else { throw ONNXExportError("--config: block \(c.block) is named twice") }
                map[c.block] = c.variant
            }
            chosen = map
            if split == nil, part != nil { split = file.partition?.splitAfterBlock }
        } else {
            chosen = try variants.map(ModelExport.parseVariants) ?? [:]
        }
        let exportPart: ExportPart
        if let part {
            guard let p = ExportPart(rawValue: part) else { throw ONNXExportError("--part: \(part) is not whole, device or edge") }
            exportPart = p
        } else {
            exportPart = .whole
        }
        let pkg = try ElasticPackage.read(path: self.package)
        let exporter = try ModelExport(package: pkg)
        try exporter.compose(chosen)
        if let adapters { try exporter.install(adaptersFile: adapters) }
        let start = Date()
        let bytes = try exporter.onnx(part: exportPart, splitAfterBlock: split)
        try ModelExport.writeAtomically(bytes, to: out)
        let ms = Date().timeIntervalSince(start) * 1000
        print("wrote \(out): \(bytes.count) bytes, \(exportPart.rawValue) part, variants \(exporter.network.choiceIDs.joined(separator: ",")), "
              + "exported in \(String(format: "%.1f", ms)) ms")
    }
}
