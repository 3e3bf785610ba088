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
            2 FLOPs; a training step counts 3× the forward): the full training step, the adapter-only TENT step
            (parallel adapters train, every other weight frozen, batch norms on batch statistics) and inference
            at batch 64 and 1, at each of --thread-counts. With Debian's python3-torch, PyTorch runs the identical
            network on the same weights in the same run at the same thread counts, and the bench prints the
            ratios, and the peak RSS of a fresh process of each side running adapter-only steps. It also prints
            which kernels OpenBLAS chose (OPENBLAS_CORETYPE overrides its choice; the bench never sets it).
            Build in release mode first: swift build -c release --product fleetadapt
            """))

    @Option(help: "Timed runs per figure (after 3 warm-up runs).")
    var iterations: Int = 20

    @Option(help: "Thread counts to measure, comma-separated: the engine's lanes (Tape.threads) and PyTorch's intra-op threads.")
    var threadCounts: String = "1,2"

    /// The child process whose peak RSS the bench reports (it runs adapter-only steps and prints ru_maxrss).
    @Flag(help: .hidden)
    var adapterRSSOnly = false

    func validate() throws {
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        guard let t = counts, !t.isEmpty, t.allSatisfy({ (1...64).contains($0) }) else {
            throw ValidationError("--thread-counts takes thread counts from 1 to 64, comma-separated")
        }
    }

    var counts: [Int]? {
        let parts = threadCounts.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(nil) ? nil : parts.compactMap { $0 }
    }

    /// Engine figures at one thread count (ms).
    struct Figures { var train = 0.0, adapter = 0.0, infer64 = 0.0, infer1 = 0.0 }

    /// The model of the adapter-only step: `weights` loaded, zero-initialised parallel adapters, only they train
    /// while batch norms normalise with batch statistics and update their running ones.
    static func adapterModel(_ weights: [String: SafeTensor]) throws -> Model {
        let model = Model.resnet(seed: 0)
        try model.load(weights)
        model.attachAdapters(.parallel)
        model.setTrainable(.adaptersOnBatchStatistics)
        return model
    }

    /// One adapter-only TENT step (entropy loss, Adam) on `tape`.
    static func adapterStep(_ model: Model, _ optimizer: Optimizer, _ batch: Tensor, _ tape: Tape) {
        model.store.zeroGrads()
        tape.reset()
        model.backward(Losses.entropy(model.forward(batch, training: true, tape: tape)).grad, tape: tape)
        optimizer.step()
    }

    /// This process's peak resident set (ru_maxrss) in KiB.
    static func peakRSSKiB() -> Int {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss
    }

    func run() throws {
        let data = try FashionMNIST.load(split: .test, limit: 64)
        let batch = data.tensor(Array(0..<64))
        let counts = self.counts ?? [1]
        if adapterRSSOnly {
            // A fresh process: the peak RSS of loading, building and running adapter-only steps, nothing else.
            let model = try Self.adapterModel(Model.resnet(seed: 0).namedTensors())
            let optimizer = Optimizer(model.store, kind: .adam(beta1: 0.9, beta2: 0.999, decoupled: false), learningRate: 1e-3)
            let tape = Tape(threads: counts[0])
            for _ in 0..<10 { Self.adapterStep(model, optimizer, batch, tape) }
            print(Self.peakRSSKiB())
            return
        }
        let model = Model.resnet(seed: 0)
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
        var figures: [Int: Figures] = [:]
        for n in counts {
            let tape = Tape(threads: n)
            model.threads = n
            figures[n, default: Figures()].train = median {
                model.store.zeroGrads()
                tape.reset()
                let (_, g) = Losses.crossEntropy(model.forward(batch, training: true, tape: tape), labels: labels)
                model.backward(g, tape: tape)
                optimizer.step()
            }
            figures[n]!.infer64 = median { _ = model.forward(batch, training: false) }
            figures[n]!.infer1 = median { _ = model.forward(one, training: false) }
        }
        model.threads = 1
        let exported = model.namedTensors()
        let referenceLogits = model.forward(batch, training: false)
        for n in counts {
            // Each count starts from the same weights and zero adapters.
            let adapted = try Self.adapterModel(exported)
            let adapterOpt = Optimizer(adapted.store, kind: .adam(beta1: 0.9, beta2: 0.999, decoupled: false), learningRate: 1e-3)
            let tape = Tape(threads: n)
            figures[n]!.adapter = median { Self.adapterStep(adapted, adapterOpt, batch, tape) }
        }
        // The PyTorch peer gets the same weights, input and our eval logits.
        let peers = try counts.map { try runPeer(exported, batch: batch, logits: referenceLogits, threads: $0) }
        let ownRSS = try? Shell.run([CommandLine.arguments[0], "bench", "train", "--adapter-rss-only", "--thread-counts", "1"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let flops = Self.forwardFLOPs(model) * 64
        print("5-block ResNet 16/32/64, 1×28×28, forward \(String(format: "%.1f", Self.forwardFLOPs(model) / 1e6)) MFLOP per image")
        print("OpenBLAS core: \(BLASInfo.coreName) (OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"))")
        for n in counts {
            let f = figures[n]!
            print("engine, \(n) thread\(n == 1 ? "" : "s"):")
            print(String(format: "  training step, batch 64:          %8.2f ms  (%.1f GFLOP/s)", f.train, 3 * flops / f.train / 1e6))
            print(String(format: "  adapter-only TENT step, batch 64: %8.2f ms  (%.2f× the full step)", f.adapter, f.adapter / f.train))
            print(String(format: "  inference, batch 64:              %8.2f ms  (%.1f GFLOP/s)", f.infer64, flops / f.infer64 / 1e6))
            print(String(format: "  inference, batch 1:               %8.2f ms", f.infer1))
        }
        guard let first = peers.compactMap({ $0 }).first else {
            print("PyTorch peer not run: install Debian's python3-torch (apt-get install python3-torch) to compare in the same run")
            return
        }
        print(String(format: "PyTorch %@ CPU, identical network and weights, same run (engine/PyTorch, below 1 is faster):", first.version as NSString))
        print("  threads  training b64          adapter-only b64      inference b64         batch 1")
        for (n, peer) in zip(counts, peers) {
            guard let peer else { continue }
            let f = figures[n]!
            func cell(_ ours: Double, _ theirs: Double) -> String {
                String(format: "%6.2f/%6.2f %5.2f×", ours, theirs, ours / theirs).padding(toLength: 22, withPad: " ", startingAt: 0)
            }
            print("  \(String(n).padding(toLength: 7, withPad: " ", startingAt: 0))  " + cell(f.train, peer.train) + cell(f.adapter, peer.adapter)
                  + cell(f.infer64, peer.infer64) + cell(f.infer1, peer.infer1))
        }
        print("  (each cell: engine ms / PyTorch ms, ratio; PyTorch's intra-op threads \(peers.compactMap { $0?.threads }.map(String.init).joined(separator: ", ")))")
        let peerRSS = try runPeerRSS(exported, batch: batch, logits: referenceLogits)
        if let own = ownRSS.flatMap({ Double($0) }), let peerRSS {
            print(String(format: "  peak RSS of a fresh process running adapter-only steps (1 thread): engine %.1f MiB, PyTorch %.1f MiB (%.2f×)",
                         own / 1024, peerRSS / 1024, own / peerRSS))
        }
        print(String(format: "  logits after loading our safetensors weights into PyTorch: max |difference| %.2e", first.diff))
    }

    /// What deploy/tools/torch_peer.py prints: one JSON object.
    struct Peer: Decodable {
        var train, adapter, infer64, infer1, diff: Double
        var version: String
        var threads: Int

        enum CodingKeys: String, CodingKey {
            case train = "train_ms", adapter = "adapter_ms", infer64 = "infer64_ms", infer1 = "infer1_ms", diff = "max_abs_logit_diff"
            case version = "torch", threads
        }
    }

    /// The peer script and the file it reads, or nil when Debian's python3 with torch is not there.
    func peerInput(_ weights: [String: SafeTensor], batch: Tensor, logits: Tensor) throws -> (script: String, path: String)? {
        guard let script = ["deploy/tools/torch_peer.py"].first(where: { FileManager.default.fileExists(atPath: $0) }),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"),
              (try? Shell.run(["/usr/bin/python3", "-c", "import torch, numpy"])) != nil else { return nil }
        var tensors = weights
        tensors["input"] = SafeTensor(floats: batch.data, shape: batch.shape)
        tensors["logits"] = SafeTensor(floats: logits.data, shape: logits.shape)
        let path = NSTemporaryDirectory() + "fleetadapt-peer-\(getpid()).safetensors"
        try SafeTensors.write(tensors, to: path)
        return (script, path)
    }

    /// Runs the peer at `threads` intra-op threads; nil when it cannot run.
    func runPeer(_ weights: [String: SafeTensor], batch: Tensor, logits: Tensor, threads: Int) throws -> Peer? {
        guard let (script, path) = try peerInput(weights, batch: batch, logits: logits) else { return nil }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try Shell.run(["/usr/bin/python3", script, path, "--threads", String(threads)])
        do { return try JSONDecoder().decode(Peer.self, from: Data(out.utf8)) } catch {
            FileHandle.standardError.write(Data("torch_peer.py printed no result this bench reads (\(error)): \(out.prefix(500))\n".utf8))
            return nil
        }
    }

    /// The peer's peak RSS (KiB) of adapter-only steps in a fresh process, at one thread.
    func runPeerRSS(_ weights: [String: SafeTensor], batch: Tensor, logits: Tensor) throws -> Double? {
        struct RSS: Decodable { var adapter_peak_rss_kib: Double }
        guard let (script, path) = try peerInput(weights, batch: batch, logits: logits) else { return nil }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try Shell.run(["/usr/bin/python3", script, path, "--threads", "1", "--rss-only"])
        return (try? JSONDecoder().decode(RSS.self, from: Data(out.utf8)))?.adapter_peak_rss_kib
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
