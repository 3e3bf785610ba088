import Foundation
@testable import ElasticModel
import Learning
import Testing

struct DistillationTests {
    /// Distillation makes a pruned block a better stand-in: lower MSE against the teacher on held-out features and
    /// higher accuracy of the network with that block swapped in, for every 75 %-pruned variant.
    @Test func distilledVariantsBeatUndistilledOnes() throws {
        let built = Fixture.built
        let m = built.package.manifest
        var wins = 0
        for (p, block) in m.blocks.enumerated() {
            guard let v = block.variants.firstIndex(where: { $0.id == "s75" }), let d = block.variants[v].distillation else {
                Issue.record("\(block.name) lacks a distilled s75")
                continue
            }
            #expect(d.mseAfter < d.mseBefore, "\(block.name): \(d)")
            let distilled = m.accuracy.baseAccuracy - m.accuracy.drops[p][v]
            if distilled > built.undistilled[p][v] { wins += 1 }
        }
        // Accuracy on 300 images is noisy for a block whose pruning barely hurts; most positions must gain.
        #expect(wins >= 4, "distilled s75 beat undistilled at \(wins) of 5 positions")
        let total = zip(m.blocks.indices, m.accuracy.drops).reduce(0.0) { sum, pd in
            let v = m.blocks[pd.0].variants.firstIndex { $0.id == "s75" }!
            return sum + (m.accuracy.baseAccuracy - pd.1[v]) - built.undistilled[pd.0][v]
        }
        #expect(total > 0.2, "summed accuracy gain of distillation: \(total)")
    }

    @Test func profilesAreOrderedByWidth() {
        let m = Fixture.built.package.manifest
        for b in m.blocks {
            let flops = b.variants.filter { $0.skip == nil }.map { $0.profile!.flops }
            #expect(flops == flops.sorted(by: >), "\(b.name): \(flops)")
            let bytes = b.variants.filter { $0.skip == nil }.map { $0.profile!.paramBytes }
            #expect(bytes == bytes.sorted(by: >))
            #expect(Set(b.variants.map { $0.profile!.outputBytes }).count == 1, "every variant hands on the same tensor")
            #expect(b.variants.allSatisfy { $0.profile!.latencyMs > 0 })
        }
        #expect(m.combinationCount == 3125)
        #expect(m.reference.gflops > 0)
    }

    /// The fitted drops are non-negative (so no estimate exceeds the base) and minimise the fit objective at least
    /// as well as the clamped single-swap drops they start from.
    @Test func fittedDropsAreNonNegativeAndFitBetter() {
        let m = Fixture.built.package.manifest
        let a = m.accuracy
        #expect(a.estimate([0, 0, 0, 0, 0]) == a.baseAccuracy)
        #expect(a.validation.count == 4 && a.calibration.count == 3)
        #expect(a.meanAbsError == a.validation.map { abs($0.measured - $0.estimated) }.reduce(0, +) / 4)
        #expect(a.fitted.allSatisfy { $0.allSatisfy { $0 >= 0 } })
        let cmp = a.comparison { ids in ids.enumerated().map { p, id in m.blocks[p].variants.firstIndex { $0.id == id }! } }
        #expect(abs(cmp.fitted.0 - a.meanAbsError) < 1e-12 && abs(cmp.fitted.1 - a.maxAbsError) < 1e-12)
        let report = ScalingReport(manifest: m)
        // Estimates stay at or below the base; only measured frontier combinations may exceed it (measurement noise).
        let ceiling = max(a.baseAccuracy, (a.frontier ?? []).map(\.measured).max() ?? 0)
        #expect(report.points.allSatisfy { $0.accuracy <= ceiling + 1e-12 && $0.accuracy >= 0 })
        // Rebuild the rows the builder fitted on and compare objectives.
        var index: [[Int?]] = a.drops.map { $0.map { _ in nil } }
        var count = 0
        for p in a.drops.indices { for v in a.drops[p].indices where v > 0 { index[p][v] = count; count += 1 } }
        var rows: [([Int], Double)] = []
        var prior = [Double](repeating: 0, count: count)
        for p in a.drops.indices { for v in a.drops[p].indices where v > 0 { rows.append(([index[p][v]!], a.drops[p][v])); prior[index[p][v]!] = a.drops[p][v] } }
        for point in a.calibration {
            let c = point.variants.enumerated().map { p, id in m.blocks[p].variants.firstIndex { $0.id == id }! }
            rows.append((c.enumerated().compactMap { index[$0.offset][$0.element] }, a.baseAccuracy - point.measured))
        }
        let fitted = a.drops.indices.flatMap { p in a.drops[p].indices.dropFirst().map { a.fitted[p][$0] } }
        let start = prior.map { max(0, $0) }
        #expect(AccuracyEstimator.objective(fitted, rows: rows, prior: prior, lambda: 0.05)
                <= AccuracyEstimator.objective(start, rows: rows, prior: prior, lambda: 0.05) + 1e-12)
    }

    /// The ridge solver recovers the drops that generated noiseless measurements.
    @Test func ridgeRecoversGeneratingDrops() {
        var rng = SeededRandom(seed: 8)
        let truth = (0..<6).map { _ in Double(rng.uniform(0, 0.3)) }
        var rows: [([Int], Double)] = []
        for _ in 0..<40 {
            let ones = (0..<6).filter { _ in rng.next() % 2 == 0 }
            rows.append((ones, ones.reduce(0.0) { $0 + truth[$1] }))
        }
        let x = AccuracyEstimator.ridge(rows: rows, unknowns: 6, prior: [Double](repeating: 0, count: 6), lambda: 1e-9)
        for (a, b) in zip(x, truth) { #expect(abs(a - b) < 1e-6) }
    }
}
