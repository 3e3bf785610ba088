import Foundation

/// Unsupervised test-time adaptation objectives, selectable by name.
public enum AdaptationLoss: String, Codable, Sendable, CaseIterable {
    /// TENT (Wang et al.): minimise prediction entropy.
    case tent
    /// SHOT-IM (Liang et al.): entropy minus the entropy of the mean prediction (diversity).
    case shotIM = "shot-im"
    /// EATA (Niu et al.): entropy over reliable (low-entropy) samples only, re-weighted.
    case eata
    /// Re-estimate batch-norm statistics on target data; no gradients (the cheap baseline).
    case bnStats = "bn-stats"
}

public enum Adaptation {
    public struct Report: Sendable, Equatable {
        public var loss: AdaptationLoss
        public var steps: Int
        public var samplesUsed: Int
        public var seconds: Double
    }

    /// Adapts `model` on unlabeled target images (labels, if present, are never read).
    /// Gradient methods update what `trainable` selects (adapters by default) with Adam. `beforeStep` runs before
    /// each gradient step with its index; an elastic network composes a different combination there to train
    /// shared adapters across its space with one optimiser.
    @discardableResult
    public static func adapt(_ model: Model, on data: LabeledImages, loss: AdaptationLoss, steps: Int, batchSize: Int = 64,
                             learningRate: Float = 1e-3, trainable: Model.Trainable = .adapters, seed: UInt64 = 0,
                             beforeStep: (Int) -> Void = { _ in }) -> Report {
        let start = Date()
        var rng = SeededRandom(seed: seed)
        var order = Array(0..<data.count)
        order.shuffle(using: &rng)
        let batch = min(batchSize, data.count)
        if loss == .bnStats {
            for bn in model.allNorms { bn.resetRunningStatistics(); bn.cumulativeBatches = 0 }
            var used = 0, i = 0
            let passes = max(1, min(steps, (data.count + batch - 1) / batch))
            for _ in 0..<passes {
                let idx = (0..<batch).map { order[(i + $0) % data.count] }
                i += batch
                _ = model.forward(data.tensor(idx), training: false)
                used += idx.count
            }
            for bn in model.allNorms { bn.cumulativeBatches = nil }
            return Report(loss: loss, steps: passes, samplesUsed: used, seconds: Date().timeIntervalSince(start))
        }
        model.setTrainable(trainable)
        let optimizer = Optimizer(model.store, kind: .adam(beta1: 0.9, beta2: 0.999, decoupled: false), learningRate: learningRate)
        var cursor = 0, used = 0
        let tape = Tape()
        for step in 0..<steps {
            beforeStep(step)
            if cursor + batch > data.count { order.shuffle(using: &rng); cursor = 0 }
            let idx = Array(order[cursor..<(cursor + batch)])
            cursor += batch
            model.store.zeroGrads()
            tape.reset()
            let logits = model.forward(data.tensor(idx), training: true, tape: tape)
            let grad: Tensor
            switch loss {
            case .tent: grad = Losses.entropy(logits).grad; used += batch
            case .shotIM: grad = Losses.informationMaximisation(logits).grad; used += batch
            case .eata:
                let r = Losses.filteredEntropy(logits)
                grad = r.grad
                used += r.used
            case .bnStats: fatalError("handled above")
            }
            model.backward(grad, tape: tape)
            optimizer.step()
        }
        model.setTrainable(.all)
        return Report(loss: loss, steps: steps, samplesUsed: used, seconds: Date().timeIntervalSince(start))
    }
}
