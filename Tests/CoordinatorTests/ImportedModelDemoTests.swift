import CommandSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Learning
import Testing
import TestSupport

/// The whole loop on an imported model, as a user runs it: `fleetadapt demo --onnx` builds the package from the
/// committed SE-ResNet ONNX fixture and PNG folders (resize and crop declared), starts the real coordinator on its
/// embedded PostgreSQL, the edge server and real agent processes whose local data are image folders, plans them,
/// posts the domain and ends with each device's adaptation.
@Suite(.serialized) struct ImportedModelDemoTests {
    static let onnx = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ONNXTests/Fixtures/se_resnet.eval.onnx").path

    /// Fashion-MNIST images as 36×36 RGB PNGs (the 28×28 image padded by 4 black pixels), so that the declared
    /// `--resize 36 --crop 32` gives exactly the zero-padded 32×32 RGB input the fixture was trained on.
    static func writePNGs(_ data: LabeledImages, to dir: String, labelled: Bool, contrast: Float = 1) throws {
        for i in 0..<data.count {
            var pixels = [UInt8](repeating: 0, count: 36 * 36 * 3)
            for y in 0..<28 { for x in 0..<28 {
                let v = Float(data.images[i * 784 + y * 28 + x])
                let shifted = UInt8(max(0, min(255, (v * contrast + (1 - contrast) * 128).rounded())))
                for c in 0..<3 { pixels[((y + 4) * 36 + x + 4) * 3 + c] = shifted }
            } }
            let folder = labelled ? "/\(data.labels![i])-" + FashionMNIST.classNames[Int(data.labels![i])].replacingOccurrences(of: "/", with: "_") : ""
            let path = dir + folder + "/\(String(format: "%04d", i)).png"
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(PNGFile.rgb(width: 36, height: 36, pixels: pixels)).write(to: URL(fileURLWithPath: path))
        }
    }

    @Test func theDemoRunsTheFleetOnAnImportedModelWithImageFolders() throws {
        let work = NSTemporaryDirectory() + "fleetadapt-imported-demo-\(getpid())-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let train = try FashionMNIST.load(split: .train, limit: 200)
        let test = try FashionMNIST.load(split: .test, limit: 520)
        try Self.writePNGs(train, to: work + "/images/source", labelled: false)
        try Self.writePNGs(test.subset(0..<200), to: work + "/images/val", labelled: true)
        // The target domain: the other test images at 45 % contrast.
        try Self.writePNGs(test.subset(200..<520), to: work + "/images/target", labelled: true, contrast: 0.45)

        let r = try ChildProcess.run([
            try BuiltProducts.path("fleetadapt"), "demo", "--onnx", Self.onnx, "--source-images", work + "/images/source",
            "--val-images", work + "/images/val", "--device-images", work + "/images/target", "--input", "3x32x32",
            "--resize", "36", "--crop", "32", "--mean", "0.286,0.286,0.286", "--std", "0.353,0.353,0.353",
            "--agents", "2", "--steps", "15", "--loss", "shot-im", "--work-dir", work + "/demo",
            // The edge server on the block's first port and the agents' inference services on the next two: a block
            // below the ephemeral range, which no other test's port-0 socket can take meanwhile.
            "--port", String(try LoopbackPort.free()), "--edge-port", String(try LoopbackPort.freeBlock(count: 3)),
        ])
        print(r.output)
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("building the elastic package from \(Self.onnx)"))
        #expect(r.output.contains("blocks,") && r.output.contains("combinations"), "the build's figures: \(r.output)")
        #expect(r.output.contains("campaign completed"), "\(r.output)")
        // One row per device: accuracy (the folders' labels) and entropy before → after, on its 160 images. SHOT-IM
        // must raise accuracy on every device. Entropy is only required to be measured: a device planned onto a
        // combination that collapsed on the new domain (confidently wrong, low entropy) gains accuracy as SHOT-IM's
        // diversity term spreads its predictions, which raises per-sample entropy.
        let rows = r.output.split(separator: "\n").filter { $0.hasPrefix("jetson-tx2-1") || $0.hasPrefix("raspberry-pi-4-2") }
        #expect(rows.count == 2, "\(r.output)")
        for row in rows {
            let arrows = row.components(separatedBy: " → ")
            #expect(arrows.count == 3, "accuracy and entropy before → after: \(row)")
            guard arrows.count == 3 else { continue }
            let accuracyBefore = Double(arrows[0].split(separator: " ").last.map(String.init) ?? "")
            let accuracyAfter = Double(arrows[1].split(separator: " ").first.map(String.init) ?? "")
            let entropyBefore = Double(arrows[1].split(separator: " ").last.map(String.init) ?? "")
            let entropyAfter = Double(arrows[2].trimmingCharacters(in: .whitespaces))
            #expect(accuracyBefore != nil && accuracyAfter != nil && accuracyAfter! > accuracyBefore!, "adaptation raised accuracy: \(row)")
            #expect(entropyBefore != nil && entropyAfter != nil, "entropy is measured: \(row)")
        }
        // Each agent read its share of the target folder as images, through the package's preprocessing.
        for device in ["jetson-tx2-1", "raspberry-pi-4-2"] {
            let log = (try? String(contentsOfFile: work + "/demo/logs/\(device).log", encoding: .utf8)) ?? ""
            #expect(log.contains("160 local images (image folder"), "\(device): \(log.suffix(2000))")
        }
    }

    /// A port the demo would listen on that is taken — here an agent's inference service, --edge-port + 2 — ends the
    /// demo before it starts anything, naming the port and the option that moves it.
    @Test func theDemoRefusesATakenPortBeforeStartingAnything() throws {
        let base = try LoopbackPort.freeBlock(count: 3)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(base + 2).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 1) == 0)
        let work = NSTemporaryDirectory() + "fleetadapt-port-demo-\(getpid())-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let r = try ChildProcess.run([try BuiltProducts.path("fleetadapt"), "demo", "--agents", "2", "--work-dir", work,
                                      "--port", String(try LoopbackPort.free()), "--edge-port", String(base)])
        #expect(r.status != 0, "\(r.output)")
        #expect(r.output.contains("port \(base + 2) (--edge-port + 2, agent 2's inference service) is in use"), "\(r.output)")
        #expect(!FileManager.default.fileExists(atPath: work + "/coordinator"), "nothing started: \(r.output)")
    }
}
