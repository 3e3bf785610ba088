import Learning

/// LegoDNN's additive accuracy model, fitted: a combination's accuracy is estimated as base − Σ drops, one
/// non-negative drop per variant. Each variant's drop is first measured alone (every other block original); the
/// drops are then refitted by ridge-regularised, non-negative least squares on those single swaps plus random
/// measured combinations, because drops of several changed blocks compound (so single-swap drops alone
/// misestimate combinations). It stays additive, which is what lets the planner search the space exactly.
public struct AccuracyEstimate: Codable, Sendable, Equatable {
    public struct Point: Codable, Sendable, Equatable {
        public var variants: [String]
        public var measured: Double
        public var estimated: Double
    }

    public var baseAccuracy: Double
    /// Measured single-swap drops, `[position][variant]` (0 for s0).
    public var drops: [[Double]]
    /// The fitted drops the estimate adds up, `[position][variant]` (0 for s0).
    public var fitted: [[Double]]
    public var calibration: [Point]
    /// Random combinations not used for fitting: the estimator's error is reported on these.
    public var validation: [Point]
    public var meanAbsError: Double
    public var maxAbsError: Double
    public var validationImages: Int

    public func estimate(_ choice: [Int]) -> Double {
        baseAccuracy - choice.enumerated().reduce(0) { $0 + fitted[$1.offset][$1.element] }
    }

    /// The drop the planner adds up for variant v at position p.
    public func scaledDrop(position p: Int, variant v: Int) -> Double { fitted[p][v] }

    /// Mean and max absolute error on the validation points of three estimators, for comparison: the plain sum of
    /// single-swap drops, those drops times one least-squares scale fitted on the calibration points (LegoDNN's
    /// calibration), and the fitted drops this estimate uses. `choice` maps a point's variant ids to indices.
    public func comparison(choice: ([String]) -> [Int]) -> (singleSwap: (Double, Double), scaled: (Double, Double), fitted: (Double, Double)) {
        func sum(_ table: [[Double]], _ c: [Int]) -> Double { c.enumerated().reduce(0) { $0 + table[$1.offset][$1.element] } }
        var num = 0.0, den = 0.0
        for p in calibration { let d = sum(drops, choice(p.variants)); num += d * (baseAccuracy - p.measured); den += d * d }
        let scale = den > 1e-12 ? num / den : 1
        func errors(_ f: ([Int]) -> Double) -> (Double, Double) {
            let e = validation.map { abs($0.measured - f(choice($0.variants))) }
            return (e.isEmpty ? 0 : e.reduce(0, +) / Double(e.count), e.max() ?? 0)
        }
        return (errors { baseAccuracy - sum(drops, $0) }, errors { baseAccuracy - scale * sum(drops, $0) },
                errors { baseAccuracy - sum(fitted, $0) })
    }

    enum CodingKeys: String, CodingKey {
        case drops, fitted, calibration, validation
        case baseAccuracy = "base_accuracy"
        case meanAbsError = "mean_abs_error"
        case maxAbsError = "max_abs_error"
        case validationImages = "validation_images"
    }
}

public enum AccuracyEstimator {
    /// Measures single-swap drops, fits the scale on `calibrationCount` random combinations, and reports the
    /// error on `validationCount` other random combinations. Labels of `images` are used: it runs offline on the
    /// source domain's held-out split, never on a device.
    public static func fit(_ net: ElasticNetwork, images: LabeledImages, calibrationCount: Int, validationCount: Int, seed: UInt64,
                           progress: (Int, Int) -> Void = { _, _ in }) -> AccuracyEstimate {
        let saved = net.choice
        defer { net.compose(saved) }
        let positions = net.positions.count
        let singles = net.variantBlocks.reduce(0) { $0 + $1.count - 1 }
        let total = 1 + singles + calibrationCount + validationCount
        var done = 0
        func measure(_ choice: [Int]) -> Double {
            net.compose(choice)
            let a = Trainer.accuracy(net.model, images)
            done += 1
            progress(done, total)
            return a
        }
        let base = measure([Int](repeating: 0, count: positions))
        var drops = net.variantBlocks.map { [Double](repeating: 0, count: $0.count) }
        for p in 0..<positions {
            for v in 1..<net.variantBlocks[p].count {
                var c = [Int](repeating: 0, count: positions)
                c[p] = v
                drops[p][v] = base - measure(c)
            }
        }
        var rng = SeededRandom(seed: seed)
        var seen = Set<[Int]>()
        func randomCombination() -> [Int] {
            for _ in 0..<1000 {
                let c = net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) }
                if c.filter({ $0 != 0 }).count >= 2, seen.insert(c).inserted { return c }
            }
            return net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) }
        }
        let calibrationChoices = (0..<calibrationCount).map { _ in randomCombination() }
        let validationChoices = (0..<validationCount).map { _ in randomCombination() }
        let calibrationMeasured = calibrationChoices.map(measure)
        let validationMeasured = validationChoices.map(measure)
        // Ridge least squares over the variants: rows are the single swaps and the calibration combinations,
        // y = base − measured, x = the drops; the prior pulls each drop towards its single-swap measurement.
        var index: [[Int?]] = drops.map { $0.map { _ in nil } }
        var count = 0
        for p in drops.indices { for v in drops[p].indices where v > 0 { index[p][v] = count; count += 1 } }
        var rows: [([Int], Double)] = []
        for p in drops.indices { for v in drops[p].indices where v > 0 { rows.append(([index[p][v]!], drops[p][v])) } }
        for (c, m) in zip(calibrationChoices, calibrationMeasured) {
            rows.append((c.enumerated().compactMap { index[$0.offset][$0.element] }, base - m))
        }
        var prior = [Double](repeating: 0, count: count)
        for p in drops.indices { for v in drops[p].indices where v > 0 { prior[index[p][v]!] = drops[p][v] } }
        let x = Self.ridge(rows: rows, unknowns: count, prior: prior, lambda: 0.05)
        let fitted = drops.indices.map { p in drops[p].indices.map { v in index[p][v].map { x[$0] } ?? 0 } }
        var estimate = AccuracyEstimate(baseAccuracy: base, drops: drops, fitted: fitted, calibration: [], validation: [],
                                        meanAbsError: 0, maxAbsError: 0, validationImages: images.count)
        let ids: ([Int]) -> [String] = { c in c.enumerated().map { net.positions[$0.offset].variants[$0.element].id } }
        estimate.calibration = zip(calibrationChoices, calibrationMeasured).map { AccuracyEstimate.Point(variants: ids($0), measured: $1, estimated: estimate.estimate($0)) }
        estimate.validation = zip(validationChoices, validationMeasured).map { AccuracyEstimate.Point(variants: ids($0), measured: $1, estimated: estimate.estimate($0)) }
        let errors = estimate.validation.map { abs($0.measured - $0.estimated) }
        estimate.meanAbsError = errors.isEmpty ? 0 : errors.reduce(0, +) / Double(errors.count)
        estimate.maxAbsError = errors.max() ?? 0
        return estimate
    }

    /// Minimises ‖Ax − y‖² + λ‖x − prior‖² subject to x ≥ 0, for 0/1 rows given as the indices of their ones, by
    /// cyclic coordinate descent (exact for a convex quadratic with bounds; the system is small: one unknown per
    /// derived variant). Drops are kept non-negative: a pruned or skipped block does not make the network more
    /// accurate in expectation, and negative single-swap drops are measurement noise that would otherwise add up
    /// to estimates above the base accuracy. Starts from the clamped prior, so the objective only decreases.
    static func ridge(rows: [([Int], Double)], unknowns n: Int, prior: [Double], lambda: Double, sweeps: Int = 2_000) -> [Double] {
        guard n > 0 else { return [] }
        var q = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        var b = prior.map { lambda * $0 }
        for i in 0..<n { q[i][i] = lambda }
        for (ones, y) in rows {
            for i in ones {
                for j in ones { q[i][j] += 1 }
                b[i] += y
            }
        }
        var x = prior.map { max(0, $0) }
        for _ in 0..<sweeps {
            var moved = 0.0
            for j in 0..<n where q[j][j] > 0 {
                var r = b[j]
                for k in 0..<n where k != j { r -= q[j][k] * x[k] }
                let v = max(0, r / q[j][j])
                moved = max(moved, abs(v - x[j]))
                x[j] = v
            }
            if moved < 1e-13 { break }
        }
        return x
    }

    /// The objective `ridge` minimises, for tests and reports.
    static func objective(_ x: [Double], rows: [([Int], Double)], prior: [Double], lambda: Double) -> Double {
        var total = 0.0
        for (ones, y) in rows { let e = ones.reduce(0.0) { $0 + x[$1] } - y; total += e * e }
        for j in x.indices { total += lambda * (x[j] - prior[j]) * (x[j] - prior[j]) }
        return total
    }
}
