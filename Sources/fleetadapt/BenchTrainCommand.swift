import ArgumentParser
import CommandSupport
import Foundation
import Learning

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training-step and inference time of the 5-block ResNet (16/32/64) on 1×28×28 at batch 64 and 1.",
        discussion: HelpText.reflow("""
            Median of --iterations runs after warm-up, with GFLOP/s from an analytic count (a multiply-add is
            2 FLOPs; a training step counts 3× the forward). Also the adapter-only training step, against the
            full step in the same run. Build in release mode first: swift build -c release --product fleetadapt
            """))

    @Option(help: "Timed runs per figure (after 3 warm-up runs).")
    var iterations: Int = 20

    func run() throws {
        let data = try FashionMNIST.load(split: .test, limit: 64)
        let model = Model.resnet(seed: 0)
        let batch = data.tensor(Array(0..<64))
        let one = data.tensor([0])
        let labels = (0..<64).map { Int(data.labels![$0]) }
        let optimizer = Optimizer(model.store, kind: .sgd(momentum: 0.9, nesterov: false), learningRate: 0.01)
        func median(_ body: () -> Void) -> Double {
            for _ in 0..<3 { body() }
            var t: [Double] = []
            for _ in 0..<iterations {
                let s = Date()
                body()
                t.append(Date().timeIntervalSince(s) * 1000)
            }
            return t.sorted()[t.count / 2]
        }
        let tape = Tape()
        let trainStep = median {
            model.store.zeroGrads()
            tape.reset()
            let (_, g) = Losses.crossEntropy(model.forward(batch, training: true, tape: tape), labels: labels)
            model.backward(g, tape: tape)
            optimizer.step()
        }
        let infer64 = median { _ = model.forward(batch, training: false) }
        let infer1 = median { _ = model.forward(one, training: false) }
        let exported = model.namedTensors()
        let referenceLogits = model.forward(batch, training: false)
        model.attachAdapters(.parallel)
        model.setTrainable(.adapters)
        let adapterOpt = Optimizer(model.store, kind: .adam(beta1: 0.9, beta2: 0.999, decoupled: false), learningRate: 1e-3)
        let adapterStep = median {
            model.store.zeroGrads()
            tape.reset()
            model.backward(Losses.entropy(model.forward(batch, training: true, tape: tape)).grad, tape: tape)
            adapterOpt.step()
        }
        // The PyTorch peer gets the same weights (before adapters), input and our eval logits.
        let peer = try runPeer(exported, batch: batch, logits: referenceLogits)
        let flops = Self.forwardFLOPs(model) * 64
        print("5-block ResNet 16/32/64, 1×28×28, forward \(String(format: "%.1f", Self.forwardFLOPs(model) / 1e6)) MFLOP per image")
        print(String(format: "training step, batch 64:        %8.2f ms  (%.1f GFLOP/s)", trainStep, 3 * flops / trainStep / 1e6))
        print(String(format: "adapter-only TENT step, batch 64: %6.2f ms  (%.2f× the full step)", adapterStep, adapterStep / trainStep))
        print(String(format: "inference, batch 64:             %8.2f ms  (%.1f GFLOP/s)", infer64, flops / infer64 / 1e6))
        print(String(format: "inference, batch 1:              %8.2f ms", infer1))
        if let peer {
            print(String(format: "PyTorch %@ CPU (%d threads), identical network and weights, same run:", peer.version as NSString, peer.threads))
            print(String(format: "  training step b64 %.2f ms (ours/PyTorch %.2f×), inference b64 %.2f ms (%.2f×), b1 %.2f ms (%.2f×)",
                         peer.train, trainStep / peer.train, peer.infer64, infer64 / peer.infer64, peer.infer1, infer1 / peer.infer1))
            print(String(format: "  logits after loading our safetensors weights into PyTorch: max |difference| %.2e", peer.diff))
        } else {
            print("PyTorch peer not run: install Debian's python3-torch (apt-get install python3-torch) to compare in the same run")
        }
    }

    /// What deploy/tools/torch_peer.py prints: one JSON object.
    struct Peer: Decodable {
        var train, infer64, infer1, diff: Double
        var version: String
        var threads: Int

        enum CodingKeys: String, CodingKey {
            case train = "train_ms", infer64 = "infer64_ms", infer1 = "infer1_ms", diff = "max_abs_logit_diff", version = "torch", threads
        }
    }

    /// Runs deploy/tools/torch_peer.py with Debian's python3 when torch imports; nil otherwise.
    func runPeer(_ weights: [String: SafeTensor], batch: Tensor, logits: Tensor) throws -> Peer? {
        guard let script = ["deploy/tools/torch_peer.py"].first(where: { FileManager.default.fileExists(atPath: $0) }),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"),
              (try? Shell.run(["/usr/bin/python3", "-c", "import torch, numpy"])) != nil else { return nil }
        var tensors = weights
        tensors["input"] = SafeTensor(floats: batch.data, shape: batch.shape)
        tensors["logits"] = SafeTensor(floats: logits.data, shape: logits.shape)
        let path = NSTemporaryDirectory() + "fleetadapt-peer-\(getpid()).safetensors"
        try SafeTensors.write(tensors, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try Shell.run(["/usr/bin/python3", script, path])
        do { return try JSONDecoder().decode(Peer.self, from: Data(out.utf8)) } catch {
            FileHandle.standardError.write(Data("torch_peer.py printed no result this bench reads (\(error)): \(out.prefix(500))\n".utf8))
            return nil
        }
    }

    /// Multiply-adds ×2 of every convolution and the head, from the model's shapes.
    static func forwardFLOPs(_ model: Model) -> Double {
        var total = 0.0
        var size = (model.inputShape[1], model.inputShape[2])
        func conv(_ c: Conv2d, _ s: (Int, Int)) -> (Int, Int) {
            let (ho, wo) = c.outputSize(s.0, s.1)
            total += 2 * Double(c.outChannels * ho * wo * c.inChannels / c.groups * c.kernel * c.kernel)
            return (ho, wo)
        }
        size = conv(model.stem.layers[0] as! Conv2d, size)
        for b in model.blocks {
            var s = size
            for c in b.convs { s = conv(c, s) }
            if let sc = b.shortcut?.layers.first as? Conv2d { _ = conv(sc, size) }
            size = s
        }
        total += 2 * Double(model.head.inFeatures * model.head.outFeatures)
        return total
    }
}
