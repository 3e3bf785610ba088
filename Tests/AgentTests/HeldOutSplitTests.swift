@testable import Agent
import ElasticModel
import FleetAPI
import Foundation
import Learning
import Testing

/// The labelled part an adaptation does not train on: its size, that it is disjoint from the training part and
/// covers the data with it, that it is the same on every attempt, and that the adapt job reports accuracy on it.
@Suite struct HeldOutSplitTests {
    /// Images whose first byte is their index, so each image can be traced through the split.
    func numbered(_ n: Int, labels: Bool = true) -> LabeledImages {
        var images = [UInt8](repeating: 0, count: n * 4)
        for i in 0..<n { images[i * 4] = UInt8(i % 256); images[i * 4 + 1] = UInt8(i / 256) }
        return LabeledImages(images: images, classLabels: labels ? ClassLabels((0..<n).map { $0 % 10 }) : nil,
                             count: n, channels: 1, height: 2, width: 2)
    }

    func indices(_ d: LabeledImages) -> [Int] { (0..<d.count).map { Int(d.images[$0 * 4]) + 256 * Int(d.images[$0 * 4 + 1]) } }

    @Test func aQuarterIsHeldOutDisjointAndTheSameEachTime() throws {
        for n in [64, 100, 300, 1_001] {
            let split = HeldOutSplit(numbered(n))
            let held = try #require(split.heldOut)
            #expect(held.count == max(32, n / 4) && split.training.count == n - held.count)
            let h = indices(held), t = indices(split.training)
            #expect(Set(h).isDisjoint(with: t) && Set(h).union(t) == Set(0..<n), "n = \(n)")
            #expect(held.labels.map(Array.init) == h.map { $0 % 10 }, "each held-out image keeps its own label")
            #expect(split.training.labels == nil, "the adaptation never sees a label")
            #expect(indices(HeldOutSplit(numbered(n)).heldOut!) == h, "the same data gives the same split")
            #expect(h != Array(0..<held.count), "not simply the first images")
        }
    }

    @Test func smallOrUnlabelledDataIsNotSplit() {
        for data in [numbered(63), numbered(300, labels: false)] {
            let split = HeldOutSplit(data)
            #expect(split.heldOut == nil && split.training.count == data.count && split.training.labels == nil)
        }
    }

    @Test func theAdaptJobReportsAccuracyOnTheHeldOutPart() throws {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        let dir = try AgentFixture.deviceData(2)
        let environment = AgentFixture.environment(coordinator, data: dir)
        let data = try AgentFixture.images(dir)
        let outcome = try AdaptJob(environment: environment).run(AgentFixture.job(steps: 20), data: data, progress: JobProgress())
        let metrics = try #require(outcome.result.metrics)
        let held = try #require(HeldOutSplit(data).heldOut)
        #expect(metrics.heldoutSamples == held.count && metrics.samples == data.count)
        // Before adapting, the figure is the package's own combination on exactly those images, computed here anew.
        let net = try environment.package(for: AgentFixture.job().document).network
        #expect(metrics.heldoutAccuracyBefore == Trainer.accuracy(net.model, held))
        #expect(metrics.heldoutAccuracyAfter != nil)
        #expect(JobResult(attempt: 1, outcome: .succeeded, metrics: metrics).validate().isEmpty)
        #expect(QualityGate().judge(metrics).criterion == .heldoutAccuracy)
    }
}
