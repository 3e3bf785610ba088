import Foundation

/// Fashion-MNIST from Debian's `dataset-fashion-mnist` package (IDX files, gzip).
public enum FashionMNIST {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public enum Split: String, Sendable { case train, test }

    public static func load(split: Split, directory: String = defaultDirectory, limit: Int? = nil) throws -> LabeledImages {
        let prefix = split == .train ? "train" : "t10k"
        let imagesPath = "\(directory)/\(prefix)-images-idx3-ubyte.gz"
        let labelsPath = "\(directory)/\(prefix)-labels-idx1-ubyte.gz"
        guard let imageFile = FileManager.default.contents(atPath: imagesPath),
              let labelFile = FileManager.default.contents(atPath: labelsPath) else {
            throw DataError("Fashion-MNIST not found at \(imagesPath): install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)")
        }
        let images = try IDX.parse(try Gzip.decompress(Array(imageFile)))
        let labels = try IDX.parse(try Gzip.decompress(Array(labelFile)))
        guard images.dims.count == 3, labels.dims.count == 1, images.dims[0] == labels.dims[0] else {
            throw DataError("Fashion-MNIST files at \(directory) have unexpected shapes \(images.dims) / \(labels.dims)")
        }
        let n = min(images.dims[0], limit ?? Int.max)
        let per = images.dims[1] * images.dims[2]
        return LabeledImages(images: Array(images.data[0..<(n * per)]), labels: Array(labels.data[0..<n]), count: n,
                             channels: 1, height: images.dims[1], width: images.dims[2])
    }
}

/// The IDX format of (Fashion-)MNIST: magic (0, 0, type 0x08 = ubyte, dimension count), big-endian sizes, data.
public enum IDX {
    public static func parse(_ bytes: [UInt8]) throws -> (dims: [Int], data: [UInt8]) {
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else { throw DataError("IDX: bad magic") }
        guard bytes[2] == 0x08 else { throw DataError("IDX: only unsigned byte data is supported") }
        let ndim = Int(bytes[3])
        guard ndim >= 1, bytes.count >= 4 + 4 * ndim else { throw DataError("IDX: truncated header") }
        var dims: [Int] = []
        for d in 0..<ndim {
            let o = 4 + 4 * d
            dims.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let count = dims.reduce(1, *)
        let start = 4 + 4 * ndim
        guard bytes.count - start == count else { throw DataError("IDX: expected \(count) data bytes, found \(bytes.count - start)") }
        return (dims, Array(bytes[start...]))
    }
}
