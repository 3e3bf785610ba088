import ArgumentParser
import ElasticModel
import Foundation
import Learning

// Option values parsed by ArgumentParser instead of checked by hand: a wrong value is refused with the list of
// valid ones before `validate()` runs. The conformances are declared here because the enums live in libraries that
// must not depend on ArgumentParser; only this executable parses them.
extension Corruption: ExpressibleByArgument {}
extension AdaptationLoss: ExpressibleByArgument {}
extension AdapterKind: ExpressibleByArgument {}
extension AdaptationExperiment.SharedSchedule: ExpressibleByArgument {}

/// The family of a base model trained here.
enum ModelFamily: String, CaseIterable, ExpressibleByArgument {
    case resnet, mobilenetv2
}

/// A split of Fashion-MNIST.
enum DataSplit: String, CaseIterable, ExpressibleByArgument {
    case train, test

    var split: FashionMNIST.Split { self == .train ? .train : .test }
}

/// A comma-separated list of positive integers (`16,32,64`).
struct PositiveInts: ExpressibleByArgument, CustomStringConvertible, Equatable {
    var values: [Int]

    init(_ values: [Int]) { self.values = values }

    init?(argument: String) {
        let v = argument.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        values = v.compactMap { $0 }
    }

    var description: String { values.map(String.init).joined(separator: ",") }
}

/// Filter sparsities: numbers in [0, 1), distinct, the first 0 (the original block): `0,0.25,0.5,0.75`.
struct Sparsities: ExpressibleByArgument, CustomStringConvertible, Equatable {
    var values: [Double]

    init(_ values: [Double]) { self.values = values }

    init?(argument: String) {
        let v = argument.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard v.first == 0, v.allSatisfy({ $0 != nil && (0..<1).contains($0!) }), Set(v).count == v.count else { return nil }
        values = v.compactMap { $0 }
    }

    var description: String { values.map { $0 == 0 ? "0" : String($0) }.joined(separator: ",") }
}

/// A comma-separated list of finite numbers (`0.485,0.456,0.406`).
struct Numbers: ExpressibleByArgument, CustomStringConvertible, Equatable {
    var values: [Float]

    init(_ values: [Float]) { self.values = values }

    init?(argument: String) {
        let v = argument.split(separator: ",", omittingEmptySubsequences: false).map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.count <= 16, v.allSatisfy({ $0?.isFinite ?? false }) else { return nil }
        values = v.compactMap { $0 }
    }

    var description: String { values.map { String($0) }.joined(separator: ",") }
}

/// The target domain: a corruption of Fashion-MNIST at a severity (the demo and `bench adapt`).
struct TargetDomainOptions: ParsableArguments {
    @Option(help: "Corruption of the target domain (see `fleetadapt data list-corruptions`).")
    var corruption: Corruption = .fog

    @Option(help: "Corruption severity 1–5.")
    var severity: Int = 4

    func validate() throws {
        guard (1...5).contains(severity) else { throw ValidationError("--severity must be 1–5") }
    }
}

/// The shape of a ResNet trained here (`model build`, `model train-base`).
struct ResNetShapeOptions: ParsableArguments {
    @Option(help: "Channel widths per stage, comma-separated (mobilenetv2: the first is also the stem width).")
    var widths = PositiveInts([16, 32, 64])

    @Option(help: "Blocks per stage, comma-separated.")
    var blocks = PositiveInts([1, 2, 2])

    func validate() throws {
        guard widths.values.count == blocks.values.count else {
            throw ValidationError("--widths and --blocks take the same number of comma-separated positive integers")
        }
    }
}

/// A package file given as the argument, read and verified (`model inspect`, `model report`).
struct PackageFileArgument: ParsableArguments {
    @Argument(help: "The package file.")
    var file: String

    /// The verified package; a bad file is refused with the reason, naming the file.
    func read(maxBytes: Int = ElasticPackage.defaultMaxBytes) throws -> ElasticPackage {
        do { return try ElasticPackage.read(path: file, maxBytes: maxBytes) } catch { throw ValidationError("\(file): \(error)") }
    }
}
