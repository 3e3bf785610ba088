import ImageIO
import Learning

/// How an image becomes a package's network input: the one implementation the builder (its source and validation
/// folders), the agent (its local image folder and spool) and the agent's inference service (an image in a request)
/// all call, so the network sees on a device exactly the tensor it was distilled and calibrated on.
///
/// The pipeline is the manifest's record split in two:
///  1. the geometry (`geometry`): decode, channels (gray, or RGB also for a BGR network, whose first node reverses
///     them), resize, centre crop (ImageIO's `Preprocessing`, torchvision's definition), rounded to 8 bits: the
///     uint8 NCHW images every training loop and the builder keep (`LabeledImages`);
///  2. the engine's normalisation of those bytes (`LabeledImages.tensor`); the record's own `mean`/`std` and the
///     BGR order are applied inside the network's first node (see `PackageManifest.preprocessing`).
/// A built-in package carries no record: its images are resized to exactly the input's H×W, gray or RGB by C.
public struct PackageInput: Sendable, Equatable, Hashable {
    /// (C, H, W) of the network.
    public let inputShape: [Int]
    /// The record as the manifest declares it, or nil for a built-in package.
    public let declared: PackageManifest.InputPreprocessing?
    /// Step 1: resize, crop and channels, values 0…255 (no scaling, no normalisation).
    public let geometry: Preprocessing
    /// The whole record in ImageIO's form, what an application preprocessing for itself applies (to within the
    /// 8-bit rounding of step 1): the manifest's, or for a built-in package the geometry with the engine's
    /// normalisation (mean 0.2860, std 0.3530 on pixels / 255).
    public var preprocessing: Preprocessing {
        var p = geometry
        p.scaleToUnit = true
        if let d = declared {
            p.channels = Preprocessing.Channels(rawValue: d.channels) ?? p.channels
            p.mean = d.mean
            p.std = d.std
        } else {
            p.mean = [Float](repeating: GraphPackageBuilder.engineMean, count: inputShape[0])
            p.std = [Float](repeating: GraphPackageBuilder.engineStd, count: inputShape[0])
        }
        return p
    }

    /// The pipeline of a package's manifest (already validated when the package was read).
    public init(manifest: PackageManifest) throws(PackageError) {
        try self.init(inputShape: manifest.architecture.inputShape, preprocessing: manifest.preprocessing)
    }

    /// Refuses a record that cannot produce `inputShape` (a crop larger than the resize, a zero size, a crop or
    /// resize of another size than the network's input), naming the field.
    public init(inputShape: [Int], preprocessing: PackageManifest.InputPreprocessing?) throws(PackageError) {
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 }), [1, 3].contains(inputShape[0]) else {
            throw .invalidManifest(field: "architecture.input_shape", message: "must be (1 or 3, H, W), got \(inputShape)")
        }
        if let p = preprocessing { try p.validate(inputShape: inputShape) }
        self.inputShape = inputShape
        declared = preprocessing
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        let resize = preprocessing?.resize.map { Preprocessing.Resize(shorterSide: $0.shorterSide, width: $0.width, height: $0.height) }
            ?? .size(width: w, height: h)
        geometry = Preprocessing(resize: resize, crop: preprocessing?.crop.map { Preprocessing.Crop(width: $0.width, height: $0.height) },
                                 channels: c == 1 ? .gray : .rgb, scaleToUnit: false)
    }

    /// The image as the network's uint8 CHW pixels. Throws `Preprocessing.Invalid` when its size cannot give the
    /// input (a shorter-side resize without a crop on an image of another aspect ratio).
    public func pixels(_ image: Image) throws -> [UInt8] {
        let t = try geometry.apply(image)
        guard Array(t.shape.dropFirst()) == inputShape else {
            throw Preprocessing.Invalid(problems: [.init(field: "image", message: "a \(image.width)x\(image.height) image preprocesses to "
                + t.shape.dropFirst().map(String.init).joined(separator: "x") + ", the network takes " + inputShape.map(String.init).joined(separator: "x"))])
        }
        return t.data.map { UInt8(max(0, min(255, $0.rounded()))) }
    }

    /// The image as the network's input tensor (1, C, H, W), normalised as every training loop normalises.
    public func tensor(_ image: Image) throws -> Tensor {
        LabeledImages(images: try pixels(image), labels: nil, count: 1, channels: inputShape[0], height: inputShape[1], width: inputShape[2])
            .tensor([0])
    }

    /// The newest `newest` images of a folder (recursive) as uint8 NCHW; labels (and class names) when it is an
    /// ImageFolder (any number of classes). A file that fails to decode or preprocess is skipped with one line.
    public func read(folder directory: String, newest: Int, log: (String) -> Void) throws -> (images: LabeledImages, classes: [String]) {
        let folder = try ImageFolder.scan(directory, newest: max(1, newest), log: log)
        var bytes: [UInt8] = []
        var labels: [Int] = []
        var count = 0
        for entry in folder.entries {
            do {
                bytes += try pixels(try ImageDecoder.decode(file: entry.path))
                labels.append(entry.label ?? 0)
                count += 1
            } catch let error as ImageError {
                log("skipped \(error)")
            } catch {
                log("skipped \(entry.path): \(error)")
            }
        }
        return (LabeledImages(images: bytes, classLabels: folder.isLabeled ? ClassLabels(labels) : nil, count: count, channels: inputShape[0], height: inputShape[1],
                              width: inputShape[2]), folder.classes)
    }
}
