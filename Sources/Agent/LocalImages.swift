import Foundation
import ImageIO
import Learning

/// The device's local data, in either of two forms:
///  * `data.safetensors` (`LocalDataset`, what `fleetadapt data make-domain` writes), read once;
///  * a folder of JPEG/PNG images (recursive; an ImageFolder layout `class_name/*.png` gives labels, used only to
///    report accuracy, never to train), decoded with libjpeg-turbo/libpng and preprocessed as the package's
///    `Preprocessing` declares (`LocalImages.preprocessing(for:)`). Only the newest `window` images are used; with
///    `watch` the folder is scanned again for every job, so frames written into it while the agent runs are
///    picked up (a spool: the agent never deletes or writes anything there).
///
/// Corrupt, truncated, zero-byte, oversized (header or file) and non-image files are skipped with one log line
/// each (ImageIO's limits are checked before any pixel buffer is allocated).
struct LocalImages: Sendable {
    let directory: String
    let window: Int
    let watch: Bool
    let log: @Sendable (String) -> Void
    /// The last folder read per input shape, reused when not watching.
    private let cache = Shared<[[Int]: LabeledImages]>([:])

    init(directory: String, window: Int, watch: Bool, log: @escaping @Sendable (String) -> Void) {
        self.directory = directory
        self.window = window
        self.watch = watch
        self.log = log
    }

    /// Whether the directory holds `data.safetensors` (else it is read as an image folder).
    var isSafeTensors: Bool { FileManager.default.fileExists(atPath: directory + "/" + LocalDataset.fileName) }

    /// The preprocessing the built-in packages declare (they carry no record: this is the default for their
    /// `1×28×28` input, compatible with how they were trained): channels from C (gray for 1, RGB for 3), resize to
    /// exactly W×H, scaled to [0, 1], and the engine's normalisation (Fashion-MNIST's mean 0.2860, std 0.3530).
    static func preprocessing(for inputShape: [Int]) -> Preprocessing {
        let channels: Preprocessing.Channels = inputShape[0] == 1 ? .gray : .rgb
        return Preprocessing(resize: .size(width: inputShape[2], height: inputShape[1]), channels: channels, scaleToUnit: true,
                             mean: [Float](repeating: 0.2860, count: channels.count), std: [Float](repeating: 0.3530, count: channels.count))
    }

    /// The same geometry and channels as `preprocessing(for:)` without scale and normalisation: 0…255 values, which
    /// round to the engine's uint8 `LabeledImages` (the training loops normalise those as the package declares).
    static func rawPreprocessing(for inputShape: [Int]) -> Preprocessing {
        var p = preprocessing(for: inputShape)
        p.scaleToUnit = false
        p.mean = [Float](repeating: 0, count: p.channels.count)
        p.std = [Float](repeating: 1, count: p.channels.count)
        return p
    }

    /// The data for a network taking `inputShape` (C, H, W). The safetensors form is returned as stored.
    func images(for inputShape: [Int]) throws -> (data: LabeledImages, description: String) {
        if isSafeTensors {
            let (data, metadata) = try LocalDataset.read(directory: directory)
            return (data, metadata["corruption"] ?? "clean")
        }
        if !watch, let cached = cache.value[inputShape] { return (cached, "image folder") }
        let data = try Self.readFolder(directory, inputShape: inputShape, window: window, log: log)
        cache.update { $0[inputShape] = data }
        return (data, "image folder, newest \(window)\(watch ? ", watched" : "")")
    }

    /// The newest `window` images of `directory` as uint8 NCHW of `inputShape`; labels when the folder is in the
    /// ImageFolder layout (and has at most 256 classes).
    static func readFolder(_ directory: String, inputShape: [Int], window: Int, log: @escaping @Sendable (String) -> Void) throws -> LabeledImages {
        let folder = try ImageFolder.scan(directory, newest: max(1, window), log: { log("agent: " + $0) })
        let batch = try folder.load(rawPreprocessing(for: inputShape), log: { log("agent: " + $0) })
        let bytes = batch.data.map { UInt8(max(0, min(255, $0.rounded()))) }
        let labels = batch.labels.flatMap { l in l.allSatisfy { $0 < 256 } ? l.map { UInt8($0) } : nil }
        return LabeledImages(images: bytes, labels: labels, count: batch.count, channels: inputShape[0], height: inputShape[1], width: inputShape[2])
    }
}
