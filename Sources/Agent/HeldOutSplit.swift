import Learning

/// The part of a device's labelled data an adaptation does not train on, so the quality gate can judge accuracy on
/// images the adapters never saw (accuracy on the training images rewards memorising them, and TENT trains on
/// exactly the images it is scored on).
///
/// A quarter of the images, at least `minimumHeldOut`, chosen by a shuffle with a fixed seed, so the same data
/// gives the same split on every attempt and the before/after figures are on the same images. Data without labels,
/// or with fewer than `minimumImages` images, is not split: every image trains and the gate judges entropy.
struct HeldOutSplit: Sendable {
    static let minimumImages = 64
    static let minimumHeldOut = 32
    static let seed: UInt64 = 0x4845_4c44   // "HELD"

    /// The images the adaptation trains on (labels dropped) and the labelled held-out images.
    let training: LabeledImages
    let heldOut: LabeledImages?

    init(_ data: LabeledImages) {
        guard let labels = data.labels, data.count >= Self.minimumImages else {
            var all = data
            all.labels = nil
            training = all
            heldOut = nil
            return
        }
        var rng = SeededRandom(seed: Self.seed)
        var order = Array(0..<data.count)
        order.shuffle(using: &rng)
        let held = max(Self.minimumHeldOut, data.count / 4)
        let heldIndices = order[..<held].sorted(), trainIndices = order[held...].sorted()
        heldOut = Self.select(data, heldIndices, labels: labels)
        training = Self.select(data, trainIndices, labels: nil)
    }

    private static func select(_ data: LabeledImages, _ indices: [Int], labels: ClassLabels?) -> LabeledImages {
        let per = data.perImage
        var images = [UInt8]()
        images.reserveCapacity(indices.count * per)
        for i in indices { images.append(contentsOf: data.images[(i * per)..<((i + 1) * per)]) }
        return LabeledImages(images: images, classLabels: labels.map { l in ClassLabels(indices.map { l[$0] }) },
                             count: indices.count, channels: data.channels, height: data.height, width: data.width)
    }
}
