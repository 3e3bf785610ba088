import Foundation
import Testing
@testable import Learning

/// Labels of any number of classes: bytes while they fit one, 32-bit integers beyond, through subsets, accuracy and
/// a device's `data.safetensors`.
@Suite struct ClassLabelsTests {
    @Test func narrowWhileLabelsFitAByteWideBeyond() {
        let ten = ClassLabels([0, 3, 9, 255])
        #expect(ten.bytes == [0, 3, 9, 255] && Array(ten) == [0, 3, 9, 255])
        let thousand = ClassLabels([0, 999, 256, 7])
        #expect(thousand.bytes == nil && Array(thousand) == [0, 999, 256, 7])
        #expect(thousand.slice(1..<3) == [999, 256] && thousand.slice(1..<3).bytes == nil)
        #expect(LabeledImages(images: [UInt8](repeating: 1, count: 4), labels: [1, 2, 3, 4], count: 4, channels: 1, height: 1, width: 1).labels == [1, 2, 3, 4])
    }

    @Test func thousandClassLabelsRoundTripThroughALocalDataset() throws {
        let labels = ClassLabels((0..<12).map { $0 * 83 })   // 0 … 913
        let data = LabeledImages(images: (0..<(12 * 3 * 2 * 2)).map { UInt8($0 % 251) }, classLabels: labels, count: 12, channels: 3,
                                 height: 2, width: 2)
        let dir = NSTemporaryDirectory() + "labels-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try LocalDataset.write(data, metadata: [:], to: dir)
        let (read, _) = try LocalDataset.read(directory: dir)
        #expect(read == data && read.labels?.bytes == nil)
        #expect(read.subset(2..<5).labels == [166, 249, 332])
        // Ten-class data is still written as uint8, as before.
        let small = data.subset(0..<3)
        try LocalDataset.write(small, metadata: [:], to: dir)
        let (tensors, _) = try SafeTensors.read(path: dir + "/" + LocalDataset.fileName)
        let again = try LocalDataset.read(directory: dir).data
        #expect(tensors["labels"]?.dtype == .U8 && again == small)
    }

    @Test func negativeOrMisShapedLabelTensorsAreRefused() {
        let minusOne = SafeTensor(dtype: .I32, shape: [1], bytes: [255, 255, 255, 255])
        #expect(ClassLabels(tensor: minusOne, count: 1) == nil)
        #expect(ClassLabels(tensor: SafeTensor(uint8: [1, 2], shape: [2]), count: 3) == nil)
        #expect(ClassLabels(tensor: SafeTensor(floats: [1], shape: [1]), count: 1) == nil)
        #expect(ClassLabels(tensor: SafeTensor(dtype: .I32, shape: [1], bytes: [0xE8, 0x03, 0, 0]), count: 1) == [1000])
    }
}
