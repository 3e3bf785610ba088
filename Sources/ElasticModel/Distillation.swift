import Learning

/// Block-wise distillation (LegoDNN): each derived block learns to reproduce the original block's output from
/// the original network's own intermediate features, so variants stay interchangeable in any combination.
public enum Distillation {
    /// The teacher's features on a set of images: `features[0]` is the stem's output, `features[p + 1]` the
    /// output of original block p (so block p learns `features[p] → features[p + 1]`). Evaluation mode.
    public struct Features {
        public var count: Int
        /// Per feature level: (C, H, W) and the floats of all images, image-major.
        public var shapes: [[Int]]
        public var data: [[Float]]

        public func batch(level: Int, indices: [Int]) -> Tensor {
            let per = shapes[level].reduce(1, *)
            var out = [Float](repeating: 0, count: indices.count * per)
            data[level].withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() { for j in 0..<per { out[k * per + j] = src[i * per + j] } }
            }
            return Tensor(shape: [indices.count] + shapes[level], data: out)
        }
    }

    public static func teacherFeatures(_ net: ElasticNetwork, images: LabeledImages, batchSize: Int = 64) -> Features {
        let saved = net.choice
        net.compose([Int](repeating: 0, count: net.positions.count))
        defer { net.compose(saved) }
        var shapes: [[Int]] = []
        var data: [[Float]] = []
        var start = 0
        while start < images.count {
            let end = min(images.count, start + batchSize)
            var h = net.model.stem.forward(images.tensor(Array(start..<end)), training: false)
            var levels = [h]
            for b in net.model.blocks { h = b.forward(h, training: false); levels.append(h) }
            if shapes.isEmpty {
                shapes = levels.map { Array($0.shape.dropFirst()) }
                data = shapes.map { s in
                    var a: [Float] = []
                    a.reserveCapacity(images.count * s.reduce(1, *))
                    return a
                }
            }
            for (l, t) in levels.enumerated() { data[l] += t.data }
            start = end
        }
        return Features(count: images.count, shapes: shapes, data: data)
    }

    public struct Outcome: Sendable, Codable, Equatable {
        /// Mean squared error against the teacher on held-out features, before and after distillation.
        public var mseBefore: Double
        public var mseAfter: Double
        public var steps: Int

        enum CodingKeys: String, CodingKey {
            case steps
            case mseBefore = "mse_before"
            case mseAfter = "mse_after"
        }
    }

    /// Trains variant v of position p to map the teacher's input features to its output features (MSE, Adam).
    /// The last tenth of the images is held out to measure the error. Only the variant's own parameters train.
    public static func distil(_ net: ElasticNetwork, position p: Int, variant v: Int, features: Features, steps: Int,
                              batchSize: Int, learningRate: Float, seed: UInt64) -> Outcome {
        let block = net.variantBlocks[p][v]
        let held = max(1, features.count / 10)
        let trainCount = features.count - held
        let validation = Array(trainCount..<features.count)
        let before = mse(block, features: features, level: p, indices: validation)
        let own = Set(net.tensorNames(position: p, variant: v))
        let store = net.model.store
        store.setTrainable { own.contains($0) }
        defer { store.setTrainable { _ in true } }
        guard store.trainableCount > 0, steps > 0, trainCount > 0 else { return Outcome(mseBefore: before, mseAfter: before, steps: 0) }
        let optimizer = Optimizer(store, kind: .adam(beta1: 0.9, beta2: 0.999, decoupled: true), learningRate: learningRate)
        let schedule = CosineSchedule(base: learningRate, total: steps)
        var rng = SeededRandom(seed: seed)
        let batch = min(batchSize, trainCount)
        let tape = Tape()
        for step in 0..<steps {
            let idx = (0..<batch).map { _ in Int(rng.next() % UInt64(trainCount)) }
            let x = features.batch(level: p, indices: idx)
            let target = features.batch(level: p + 1, indices: idx)
            store.zeroGrads()
            tape.reset()
            let y = block.forward(x, training: true, tape: tape)
            var dy = y
            let scale = 2 / Float(y.count)
            for i in dy.data.indices { dy.data[i] = (y.data[i] - target.data[i]) * scale }
            _ = block.backward(dy, tape: tape)
            optimizer.learningRate = schedule.rate(at: step)
            optimizer.step()
        }
        return Outcome(mseBefore: before, mseAfter: mse(block, features: features, level: p, indices: validation), steps: steps)
    }

    /// Evaluation-mode MSE of `block` against the teacher on the given images.
    public static func mse(_ block: Block, features: Features, level p: Int, indices: [Int]) -> Double {
        var total = 0.0, count = 0
        var start = 0
        while start < indices.count {
            let idx = Array(indices[start..<min(indices.count, start + 128)])
            let y = block.forward(features.batch(level: p, indices: idx), training: false)
            let t = features.batch(level: p + 1, indices: idx)
            for i in y.data.indices { let d = Double(y.data[i] - t.data[i]); total += d * d }
            count += y.count
            start += 128
        }
        return count == 0 ? 0 : total / Double(count)
    }
}
