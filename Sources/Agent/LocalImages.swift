import ElasticModel
import Foundation
import ImageIO
import Learning

/// The device's local data, in either of two forms:
///  * `data.safetensors` (`LocalDataset`, what `fleetadapt data make-domain` writes), read once;
///  * a folder of JPEG/PNG images (recursive; an ImageFolder layout `class_name/*.png` gives labels, used only to
///    report accuracy, never to train), decoded with libjpeg-turbo/libpng and preprocessed as the package's
///    manifest declares, resize and crop included, by the pipeline the builder used (`PackageInput`), so the bytes
///    are those the package was distilled on. Only the newest `window` images are used; with `watch` the folder is
///    scanned again for every job, so frames written into it while the agent runs are picked up (a spool: the
///    agent never deletes or writes anything there).
///
/// Corrupt, truncated, zero-byte, oversized (header or file) and non-image files are skipped with one log line
/// each (ImageIO's limits are checked before any pixel buffer is allocated).
struct LocalImages: Sendable {
    let directory: String
    let window: Int
    let watch: Bool
    let log: @Sendable (String) -> Void
    /// The last folder read per input pipeline, reused when not watching.
    private let cache = Shared<[PackageInput: LabeledImages]>([:])

    init(directory: String, window: Int, watch: Bool, log: @escaping @Sendable (String) -> Void) {
        self.directory = directory
        self.window = window
        self.watch = watch
        self.log = log
    }

    /// Whether the directory holds `data.safetensors` (else it is read as an image folder).
    var isSafeTensors: Bool { FileManager.default.fileExists(atPath: directory + "/" + LocalDataset.fileName) }

    /// The data for a package's network. The safetensors form is returned as stored.
    func images(for input: PackageInput) throws -> (data: LabeledImages, description: String) {
        if isSafeTensors {
            let (data, metadata) = try LocalDataset.read(directory: directory)
            return (data, metadata["corruption"] ?? "clean")
        }
        if !watch, let cached = cache.value[input] { return (cached, "image folder") }
        let data = try Self.readFolder(directory, input: input, window: window, log: log)
        cache.update { $0[input] = data }
        return (data, "image folder, newest \(window)\(watch ? ", watched" : "")")
    }

    /// The newest `window` images of `directory` as the package's uint8 NCHW; labels when the folder is in the
    /// ImageFolder layout (and has at most 256 classes).
    static func readFolder(_ directory: String, input: PackageInput, window: Int, log: @escaping @Sendable (String) -> Void) throws -> LabeledImages {
        try input.read(folder: directory, newest: window, log: { log("agent: " + $0) }).images
    }
}
