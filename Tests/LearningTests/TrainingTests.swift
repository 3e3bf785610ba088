import Foundation
import Testing
@testable import Learning

/// One small network trained once per test process on a clean Fashion-MNIST subset, shared by value.
enum Trained {
    static let widths = [8, 16, 24]
    static let train = try! FashionMNIST.load(split: .train, limit: 6000)
    static let test = try! FashionMNIST.load(split: .test, limit: 1000)

    static func fresh() -> Model { Model.resnet(widths: widths, blocksPerStage: [2, 2, 1], seed: 7) }

    /// (parameter slab, buffer slab, seconds) after 300 steps of SGD with momentum at batch 64.
    static let weights: (values: [Float], buffers: [Float], seconds: Double) = {
        let model = fresh()
        let opt = Optimizer(model.store, kind: .sgd(momentum: 0.9, nesterov: true), learningRate: 0.05, weightDecay: 5e-4)
        let report = Trainer.train(model, on: train, steps: 300, batchSize: 64, optimizer: opt,
                                   schedule: CosineSchedule(base: 0.05, total: 300, warmup: 10), seed: 1)
        return (model.store.values, model.store.buffers, report.seconds)
    }()

    /// A copy of the trained network, optionally with zero-initialised adapters.
    static func model(adapters: AdapterKind? = nil) -> Model {
        let m = fresh()
        m.store.values = weights.values
        m.store.buffers = weights.buffers
        if let adapters { m.attachAdapters(adapters) }
        return m
    }
}

@Suite(.serialized) struct TrainingTests {
    @Test func aSmallNetworkLearnsFashionMNIST() {
        let acc = Trainer.accuracy(Trained.model(), Trained.test)
        // Measured 0.80–0.83 on 1,000 test images after 300 steps; chance is 0.10.
        #expect(acc > 0.75, "accuracy \(acc) after \(Trained.weights.seconds) s of training")
    }

    @Test(arguments: AdapterKind.allCases)
    func zeroInitialisedAdaptersLeaveLogitsBitIdentical(kind: AdapterKind) {
        let plain = Trainer.logits(Trained.model(), Trained.test.subset(0..<200))
        let adapted = Trainer.logits(Trained.model(adapters: kind), Trained.test.subset(0..<200))
        #expect(plain.data.map(\.bitPattern) == adapted.data.map(\.bitPattern))
    }

    @Test func adapterOnlyTrainingLeavesFrozenWeightsBitIdentical() throws {
        let model = Trained.model(adapters: .parallel)
        let before = model.store.values
        let beforeBuffers = model.store.buffers
        let target = try Corruption.contrast.apply(to: Trained.test.subset(0..<256), severity: 4, seed: 3)
        Adaptation.adapt(model, on: target, loss: .tent, steps: 5, batchSize: 32, learningRate: 1e-3, trainable: .adapters)
        #expect(Self.changedAdaptersLeavingTheRestBitIdentical(model, before: before) > 0)
        #expect(beforeBuffers == model.store.buffers)
    }

    /// Adapters on batch statistics: only adapters move among the parameters, while batch norms normalise with the
    /// target batches (so their running statistics move); `beforeStep` runs once before each step, in order.
    @Test func adaptersOnBatchStatisticsMoveAdaptersAndRunningStatisticsOnly() throws {
        let model = Trained.model(adapters: .parallel)
        let before = model.store.values
        let beforeBuffers = model.store.buffers
        let target = try Corruption.contrast.apply(to: Trained.test.subset(0..<256), severity: 4, seed: 3)
        var seen: [Int] = []
        Adaptation.adapt(model, on: target, loss: .shotIM, steps: 4, batchSize: 32, learningRate: 1e-3,
                         trainable: .adaptersOnBatchStatistics, beforeStep: { seen.append($0) })
        #expect(seen == [0, 1, 2, 3])
        #expect(Self.changedAdaptersLeavingTheRestBitIdentical(model, before: before) > 0)
        #expect(beforeBuffers != model.store.buffers)
    }

    /// How many adapter tensors moved since `before`; records an issue for any other parameter that moved at all.
    static func changedAdaptersLeavingTheRestBitIdentical(_ model: Model, before: [Float]) -> Int {
        var changedAdapters = 0
        for e in model.store.entries where !e.isBuffer {
            let range = e.offset..<(e.offset + e.count)
            if e.name.contains(".adapter.") {
                if before[range] != model.store.values[range] { changedAdapters += 1 }
            } else {
                #expect(before[range].map(\.bitPattern) == model.store.values[range].map(\.bitPattern), "\(e.name) changed")
            }
        }
        return changedAdapters
    }

    @Test func adapterOnlyTrainingSavesMemory() {
        let batch = Trained.test.tensor(Array(0..<64))
        let full = Trained.model(adapters: .parallel)
        full.setTrainable(.all)
        let fullTape = Tape()
        _ = full.forward(batch, training: true, tape: fullTape)
        let fullMemory = full.trainingMemoryFloats(fullTape)
        let lite = Trained.model(adapters: .parallel)
        lite.setTrainable(.adapters)
        let liteTape = Tape()
        _ = lite.forward(batch, training: true, tape: liteTape)
        let liteMemory = lite.trainingMemoryFloats(liteTape)
        #expect(liteMemory.gradients * 5 < fullMemory.gradients)
        #expect(liteMemory.activations < fullMemory.activations)
        print("training memory at batch 64 (floats): full \(fullMemory), adapters only \(liteMemory)")
    }

    /// Each method raises accuracy on a corrupted domain over the unadapted model; labels are read only to measure.
    @Test(arguments: [AdaptationLoss.tent, .shotIM, .eata, .bnStats])
    func unsupervisedAdaptationRaisesAccuracy(loss: AdaptationLoss) throws {
        let unlabeled = try Corruption.contrast.apply(to: Trained.test.subset(0..<512), severity: 5, seed: 11)
        var adaptSet = unlabeled
        adaptSet.labels = nil
        let heldOut = try Corruption.contrast.apply(to: Trained.test.subset(512..<1000), severity: 5, seed: 11, firstIndex: 512)
        let baseline = Trainer.accuracy(Trained.model(), heldOut)
        let model = Trained.model(adapters: .parallel)
        Adaptation.adapt(model, on: adaptSet, loss: loss, steps: loss == .bnStats ? 8 : 30, batchSize: 64, learningRate: 2e-3,
                         trainable: .adaptersAndNorms, seed: 5)
        let adapted = Trainer.accuracy(model, heldOut)
        print("\(loss.rawValue): accuracy on contrast-5 \(baseline) → \(adapted)")
        #expect(adapted > baseline + 0.01, "\(loss.rawValue): \(baseline) → \(adapted)")
    }

    @Test func optimiserStepsMatchClosedForm() {
        let store = ParameterStore()
        _ = store.add("w", shape: [2], initial: [1, -2])
        store.grads = [0.5, 0.25]
        let sgd = Optimizer(store, kind: .sgd(momentum: 0.9, nesterov: false), learningRate: 0.1)
        sgd.step()
        #expect(store.values == [1 - 0.05, -2 - 0.025])
        sgd.step()   // momentum: v = 0.9·g + g
        #expect(abs(store.values[0] - (0.95 - 0.1 * 0.95)) < 1e-6)
        let s2 = ParameterStore()
        _ = s2.add("w", shape: [1], initial: [3])
        s2.grads = [4]
        let adam = Optimizer(s2, kind: .adam(beta1: 0.9, beta2: 0.999, decoupled: false), learningRate: 0.01)
        adam.step()   // first Adam step moves by lr·sign(g)
        #expect(abs(s2.values[0] - 2.99) < 1e-6)
        #expect(abs(CosineSchedule(base: 1, total: 100).rate(at: 50) - 0.5) < 1e-6)
    }

    @Test func seededInitialisationIsDeterministic() {
        #expect(Trained.fresh().store.values == Trained.fresh().store.values)
        #expect(Model.resnet(seed: 1).store.values != Model.resnet(seed: 2).store.values)
        let mb = Model.mobileNetV2(seed: 3)
        let y = mb.forward(Trained.test.tensor([0, 1]), training: false)
        #expect(y.shape == [2, 10] && y.data.allSatisfy(\.isFinite))
    }
}
