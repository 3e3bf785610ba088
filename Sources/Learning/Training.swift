import Foundation

/// Images as uint8 (N, C, H, W) with optional labels: the on-device data format and the datasets' format.
public struct LabeledImages: Sendable, Equatable {
    public var images: [UInt8]
    public var labels: ClassLabels?
    public var count: Int, channels: Int, height: Int, width: Int

    /// Images with byte labels (at most 256 classes), as the datasets and the agent's folders give them.
    public init(images: [UInt8], labels: [UInt8]?, count: Int, channels: Int, height: Int, width: Int) {
        self.init(images: images, classLabels: labels.map { ClassLabels($0) }, count: count, channels: channels, height: height, width: width)
    }

    /// Images with labels of any number of classes.
    public init(images: [UInt8], classLabels labels: ClassLabels?, count: Int, channels: Int, height: Int, width: Int) {
        precondition(images.count == count * channels * height * width)
        precondition(labels.map { $0.count == count } ?? true)
        self.images = images
        self.labels = labels
        self.count = count
        self.channels = channels
        self.height = height
        self.width = width
    }

    public var perImage: Int { channels * height * width }

    public func subset(_ range: Range<Int>) -> LabeledImages {
        LabeledImages(images: Array(images[(range.lowerBound * perImage)..<(range.upperBound * perImage)]),
                      classLabels: labels.map { $0.slice(range) }, count: range.count, channels: channels, height: height, width: width)
    }

    /// Fashion-MNIST normalisation (mean 0.2860, std 0.3530 of the training set) to a float batch.
    public func tensor(_ indices: [Int], mean: Float = 0.2860, std: Float = 0.3530) -> Tensor {
        var data = [Float](repeating: 0, count: indices.count * perImage)
        for (k, i) in indices.enumerated() {
            let base = i * perImage
            for j in 0..<perImage { data[k * perImage + j] = (Float(images[base + j]) / 255 - mean) / std }
        }
        return Tensor(shape: [indices.count, channels, height, width], data: data)
    }
}

/// Supervised training, evaluation and unsupervised adaptation loops over a `Model`.
public enum Trainer {
    public struct Report: Sendable {
        public var steps: Int
        public var lastLoss: Float
        public var seconds: Double
    }

    /// Cross-entropy training with seeded shuffling.
    @discardableResult
    public static func train(_ model: Model, on data: LabeledImages, steps: Int, batchSize: Int, optimizer: Optimizer,
                             schedule: CosineSchedule? = nil, seed: UInt64 = 0, progress: ((Int, Float) -> Void)? = nil) -> Report {
        guard let labels = data.labels else { return Report(steps: 0, lastLoss: .nan, seconds: 0) }
        var rng = SeededRandom(seed: seed)
        var order = Array(0..<data.count)
        var cursor = data.count
        let start = Date()
        var last: Float = .nan
        let tape = Tape()
        for step in 0..<steps {
            if cursor + batchSize > data.count { order.shuffle(using: &rng); cursor = 0 }
            let idx = Array(order[cursor..<(cursor + batchSize)])
            cursor += batchSize
            if let schedule { optimizer.learningRate = schedule.rate(at: step) }
            model.store.zeroGrads()
            tape.reset()
            let logits = model.forward(data.tensor(idx), training: true, tape: tape)
            let (loss, grad) = Losses.crossEntropy(logits, labels: idx.map { labels[$0] })
            model.backward(grad, tape: tape)
            optimizer.step()
            last = loss
            progress?(step, loss)
        }
        return Report(steps: steps, lastLoss: last, seconds: Date().timeIntervalSince(start))
    }

    /// Logits for every image, in evaluation mode, in batches.
    public static func logits(_ model: Model, _ data: LabeledImages, batchSize: Int = 256) -> Tensor {
        var out: [Float] = []
        var classes = 0
        var i = 0
        while i < data.count {
            let idx = Array(i..<min(data.count, i + batchSize))
            let l = model.forward(data.tensor(idx), training: false)
            classes = l.shape[1]
            out += l.data
            i += batchSize
        }
        return Tensor(shape: [data.count, classes], data: out)
    }

    /// Top-1 accuracy against the labels (which only evaluation ever reads).
    public static func accuracy(_ model: Model, _ data: LabeledImages) -> Double {
        guard let labels = data.labels, data.count > 0 else { return .nan }
        let l = logits(model, data)
        let k = l.shape[1]
        var correct = 0
        for i in 0..<data.count {
            var best = 0
            for j in 1..<k where l.data[i * k + j] > l.data[i * k + best] { best = j }
            if best == labels[i] { correct += 1 }
        }
        return Double(correct) / Double(data.count)
    }

    /// Mean prediction entropy (nats) in evaluation mode: the label-free signal of adaptation.
    public static func meanEntropy(_ model: Model, _ data: LabeledImages) -> Double {
        let l = logits(model, data)
        let p = Losses.softmax(l)
        let h = Losses.entropies(p, n: l.shape[0], k: l.shape[1])
        return Double(h.reduce(0, +)) / Double(max(1, h.count))
    }
}
