import ElasticModel
import Foundation
import ImageIO
import Learning
import ONNX

/// `fleetadapt model build --onnx`: an ONNX classifier and the user's image folders to an elastic package. Loads
/// and converts the file (batch norms put back after folded convolutions, their statistics estimated on the source
/// images), reads the folders with the package's own preprocessing, and hands over to `GraphPackageBuilder`.
public struct ONNXPackageBuild {
    public var onnxPath: String
    public var input: ONNXInputSpec
    /// Resize, crop, channels, mean and std: what the manifest records and every consumer applies.
    public var preprocessing: PackageManifest.InputPreprocessing
    public var sourceImages: String
    /// Newest images of the source folder used (distillation, statistics, agreement).
    public var maxSourceImages: Int
    public var validationImages: String?
    public var maxValidationImages: Int
    /// One class name a line; else the validation folder's class directories.
    public var classesFile: String?
    public var options: ElasticBuilder.Options

    public init(onnxPath: String, input: ONNXInputSpec, preprocessing: PackageManifest.InputPreprocessing, sourceImages: String,
                maxSourceImages: Int = 2048, validationImages: String? = nil, maxValidationImages: Int = 1000, classesFile: String? = nil,
                options: ElasticBuilder.Options = .init()) {
        self.onnxPath = onnxPath
        self.input = input
        self.preprocessing = preprocessing
        self.sourceImages = sourceImages
        self.maxSourceImages = maxSourceImages
        self.validationImages = validationImages
        self.maxValidationImages = maxValidationImages
        self.classesFile = classesFile
        self.options = options
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    public func run(name: String, log: (String) -> Void = { _ in },
                    progress: (ElasticBuilder.Phase, Int, Int) -> Void = { _, _, _ in }) throws -> (ElasticPackage, GraphPackageBuilder.Report) {
        let shape = [input.channels, input.height, input.width]
        guard preprocessing.mean.count == input.channels, preprocessing.std.count == input.channels else {
            throw Failure("--mean and --std need \(input.channels) values each (one per input channel)")
        }
        let onnx = try ONNXLoader().load(contentsOf: URL(fileURLWithPath: onnxPath))
        let imported = try ONNXImporter.convert(onnx, input: input, batchNorm: .afterFoldedConvolutions)
        guard imported.hasSourceWeights else { throw Failure("\(onnxPath) carries no weights (a structure-only export); export it with its weights") }
        let source = try Self.readFolder(sourceImages, shape: shape, preprocessing, newest: maxSourceImages, log: log).images
        guard source.count >= 20 else { throw Failure("--source-images: \(source.count) usable images in \(sourceImages); at least 20 are needed") }
        var validation: LabeledImages?
        var names: [String]?
        if let dir = validationImages {
            let read = try Self.readFolder(dir, shape: shape, preprocessing, newest: maxValidationImages, log: log)
            guard read.images.labels != nil, !read.classes.isEmpty else {
                throw Failure("--val-images: \(dir) is not an ImageFolder (one directory of images per class)")
            }
            guard read.classes.count == imported.classes else {
                throw Failure("--val-images: \(read.classes.count) class folders, the network has \(imported.classes) outputs")
            }
            validation = read.images
            names = read.classes
        }
        if let file = classesFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw Failure("--classes: cannot read \(file)") }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let list = Array(lines.reversed().drop { $0.isEmpty }.reversed())
            guard list.count == imported.classes else { throw Failure("--classes: \(list.count) names, the network has \(imported.classes) outputs") }
            names = list
        }
        // Statistics of the batch norms put back, on the source images as the model sees them.
        var batches: [Tensor] = []
        var start = 0
        while start < source.count {
            batches.append(GraphPackageBuilder.modelTensor(source, Array(start..<min(source.count, start + 64)), preprocessing))
            start += 64
        }
        try ONNXImporter.estimateStatistics(imported, on: batches)
        let file = (onnxPath as NSString).lastPathComponent
        return try GraphPackageBuilder.build(
            .init(graph: imported.graph, store: imported.store, valueShapes: imported.valueShapes, description: "ONNX \(file) (\(input))"),
            name: name, preprocessing: preprocessing, classNames: names, sourceImages: source, validation: validation,
            dataset: "image folder \((sourceImages as NSString).lastPathComponent)", options: options, progress: progress)
    }

    /// The newest `newest` images of a folder as the package's input pipeline makes them (`PackageInput`: the
    /// geometry, gray or RGB, values 0…255 as the agent keeps local images); labels when it is an ImageFolder.
    static func readFolder(_ dir: String, shape: [Int], _ p: PackageManifest.InputPreprocessing, newest: Int,
                           log: (String) -> Void) throws -> (images: LabeledImages, classes: [String]) {
        let read = try PackageInput(inputShape: shape, preprocessing: p).read(folder: dir, newest: newest, log: log)
        guard read.images.count > 0 else {
            throw Failure("\(dir): no image preprocessed to \(shape.map(String.init).joined(separator: "x"))")
        }
        return read
    }
}
