import Testing
@testable import Learning

/// The fleet's adapter average: folded one contribution at a time it equals the batch weighted average, per tensor;
/// a contribution whose shapes disagree changes nothing.
@Suite struct WeightedTensorAverageTests {
    @Test func foldingOneAtATimeEqualsTheBatchWeightedAverage() throws {
        var rng = SeededRandom(seed: 4)
        let contributions: [(tensors: [String: SafeTensor], weight: Double)] = (0..<5).map { i in
            var t = ["a": SafeTensor(floats: (0..<6).map { _ in rng.uniform(-1, 1) }, shape: [2, 3])]
            if i % 2 == 0 { t["b"] = SafeTensor(floats: (0..<4).map { _ in rng.uniform(-1, 1) }, shape: [4]) }
            return (t, Double(10 * (i + 1)))
        }
        var average = try WeightedTensorAverage()
        for c in contributions.prefix(2) {
            let folded = average.fold(c.tensors, weight: c.weight)
            #expect(folded)
        }
        // Resumed from what was stored, as the coordinator does between jobs.
        average = try WeightedTensorAverage(tensors: average.tensors, weights: average.weights)
        for c in contributions.dropFirst(2) {
            let folded = average.fold(c.tensors, weight: c.weight)
            #expect(folded)
        }

        for name in ["a", "b"] {
            let holders = contributions.filter { $0.tensors[name] != nil }
            let total = holders.reduce(0) { $0 + $1.weight }
            let expected = try (0..<holders[0].tensors[name]!.elementCount).map { k in
                try holders.reduce(0.0) { $0 + $1.weight * Double(try $1.tensors[name]!.floats()[k]) } / total
            }
            let got = try #require(average.tensors[name]).floats()
            for (g, e) in zip(got, expected) { #expect(abs(Double(g) - e) < 1e-5, "\(name)") }
            #expect(average.weights[name] == total)
        }

        let before = average.tensors
        let refused = !average.fold(["a": SafeTensor(floats: [1, 2, 3], shape: [3]), "c": SafeTensor(floats: [1], shape: [1])], weight: 5)
        #expect(refused)
        #expect(average.tensors == before)
    }
}
