import ArgumentParser
import CommandSupport
import Foundation
import Learning

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Write a device's local data for a target domain.",
        subcommands: [MakeDomain.self, ListCorruptions.self])

    struct MakeDomain: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "make-domain",
            abstract: "Corrupt Fashion-MNIST images into a target domain and write them as a device's local data.",
            discussion: HelpText.reflow("""
                Writes DIR/data.safetensors: uint8 `images` (N, 1, 28, 28), uint8 `labels` (N) unless --no-labels,
                and metadata (corruption, severity, seed, source). The agent trains on the images only; labels,
                when present, are used to report accuracy. The same seed and offset always give the same bytes.
                Example: fleetadapt data make-domain --corruption fog --severity 3 --count 2000 --out /tmp/cam1
                """))

        @Option(help: "Corruption to apply; see `fleetadapt data list-corruptions`.")
        var corruption: Corruption

        @Option(help: "Severity from 1 (mild) to 5 (strong).")
        var severity: Int = 3

        @Option(help: "Number of images.")
        var count: Int = 2000

        @Option(help: "First image of the source split (so devices can hold disjoint samples).")
        var offset: Int = 0

        @Option(help: "Source split of Fashion-MNIST: train or test.")
        var split: DataSplit = .test

        @Option(help: "Seed of the corruption's randomness.")
        var seed: UInt64 = 1

        @Flag(help: "Leave labels out (a device with purely unlabeled data).")
        var noLabels = false

        @Option(help: "Directory to write data.safetensors into (created if needed).")
        var out: String

        func validate() throws {
            guard (1...5).contains(severity) else { throw ValidationError("--severity must be 1–5") }
            guard count > 0 else { throw ValidationError("--count must be positive") }
            guard offset >= 0 else { throw ValidationError("--offset must not be negative") }
        }

        func run() throws {
            let source = try FashionMNIST.load(split: split.split)
            guard offset + count <= source.count else {
                throw ValidationError("the \(split.rawValue) split has \(source.count) images; offset + count is \(offset + count)")
            }
            var data = try corruption.apply(to: source.subset(offset..<(offset + count)), severity: severity,
                                                                   seed: seed, firstIndex: offset)
            if noLabels { data.labels = nil }
            try LocalDataset.write(data, metadata: ["corruption": corruption.rawValue, "severity": String(severity), "seed": String(seed),
                                                    "source": "fashion-mnist:\(split.rawValue)[\(offset)..<\(offset + count)]"], to: out)
            print("wrote \(count) images (\(corruption.rawValue), severity \(severity)) to \(out)/\(LocalDataset.fileName)")
        }
    }

    struct ListCorruptions: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list-corruptions", abstract: "Print the corruption names.")
        func run() { Corruption.allCases.forEach { print($0.rawValue) } }
    }
}
