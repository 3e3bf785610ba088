import ArgumentParser
import CommandSupport
import ElasticModel
import Foundation

struct ModelInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Verify a package and print what it holds.",
        discussion: HelpText.reflow("""
            Checks the archive, the SHA-256 of the weights, the manifest and that every tensor fits the declared
            network, then prints blocks, variants, profiles and the accuracy estimator. A truncated or tampered
            file is refused with the reason, and the exit status is non-zero. Example:
              fleetadapt model inspect /tmp/fashion.fap
            """))

    @OptionGroup var package: PackageFileArgument

    @Option(help: "Refuse files larger than this many bytes.")
    var maxBytes: Int = ElasticPackage.defaultMaxBytes

    @Flag(help: "Print the manifest as JSON instead of tables.")
    var json = false

    func run() throws {
        let package = try self.package.read(maxBytes: maxBytes)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(package.manifest), as: UTF8.self))
            return
        }
        let bytes = Array(FileManager.default.contents(atPath: self.package.file) ?? Data())
        PackageTables.printVariants(package.manifest, undistilled: nil)
        PackageTables.printSummary(package.manifest, bytes: bytes)
        let m = package.manifest
        switch m.accuracyMetric ?? "accuracy" {
        case "teacher-agreement":
            print("accuracy figures are top-1 agreement with the imported model on the source images (no labelled images were given)")
        default:
            print("accuracy figures are top-1 accuracy on labelled images")
        }
        if let p = m.preprocessing {
            let resize = p.resize.map { r in r.shorterSide.map { "shorter side \($0)" } ?? "\(r.width ?? 0)×\(r.height ?? 0)" } ?? "none"
            print("preprocessing: resize \(resize), crop \(p.crop.map { "\($0.width)×\($0.height)" } ?? "none"), \(p.channels), "
                  + "pixels / 255, mean \(p.mean), std \(p.std)")
        }
        if let names = m.classNames { print("classes: " + names.prefix(20).joined(separator: ", ") + (names.count > 20 ? ", …" : "")) }
    }
}
