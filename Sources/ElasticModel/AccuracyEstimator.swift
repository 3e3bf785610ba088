import Learning
import Planner

/// A package's accuracy estimator: measured single swaps, a fitted additive model (LegoDNN's, refitted), the
/// non-additive `AccuracyModel`s fitted on measured combinations with their errors, and the measured accuracy of the
/// combinations on the estimated accuracy–latency frontier.
///
/// The additive drops (`fitted`) are base − Σ drops, one non-negative drop per variant, refitted by
/// ridge-regularised, non-negative least squares on the single swaps plus random measured combinations. The
/// package's `model` is chosen by cross-validation among the estimators the planner searches exactly: the additive
/// drops and `logisticAdditive` (a sum of per-variant terms read through a logistic link, so drops compound towards
/// chance); the planner adds up `plannerDrop`s and reads the sum through `plannerLink`, so it ranks combinations
/// exactly as `predicted` does. Models with pair terms are fitted and reported as candidates. `estimate` is the
/// package's best figure for one combination: a measurement where the builder made one, else `predicted`, in [0, 1].
public struct AccuracyEstimate: Codable, Sendable, Equatable {
    public struct Point: Codable, Sendable, Equatable {
        public var variants: [String]
        public var measured: Double
        public var estimated: Double
    }

    /// A combination (variant indices per position) the builder measured because it lies on the estimated frontier.
    public struct MeasuredCombination: Codable, Sendable, Equatable {
        public var choice: [Int]
        public var measured: Double
        /// What the package's model estimated before the measurement.
        public var estimated: Double
    }

    /// One estimator the builder tried: its cross-validated error on the calibration combinations (how the
    /// package's model was chosen) and its error on the held-out validation combinations (how it is reported).
    public struct Candidate: Codable, Sendable, Equatable {
        public var name: String
        public var crossValidationError: Double?
        public var meanAbsError: Double
        public var maxAbsError: Double
        enum CodingKeys: String, CodingKey {
            case name
            case crossValidationError = "cross_validation_error"
            case meanAbsError = "mean_abs_error"
            case maxAbsError = "max_abs_error"
        }
    }

    public var baseAccuracy: Double
    /// Measured single-swap drops, `[position][variant]` (0 for s0).
    public var drops: [[Double]]
    /// The fitted drops the estimate adds up, `[position][variant]` (0 for s0).
    public var fitted: [[Double]]
    public var calibration: [Point]
    /// Random combinations not used for fitting: the estimator's error is reported on these.
    public var validation: [Point]
    /// Error of the package's estimator (`model`, else the additive drops) on the validation points.
    public var meanAbsError: Double
    public var maxAbsError: Double
    public var validationImages: Int
    /// The non-additive estimator the package uses; nil: the additive drops (packages built before it existed too).
    public var model: AccuracyModel? = nil
    /// Every estimator the builder tried, with its errors.
    public var candidates: [Candidate]? = nil
    /// Measured frontier combinations: `estimate` returns their measurement.
    public var frontier: [MeasuredCombination]? = nil

    /// The package's estimate for one combination, in [0, 1]: the measurement if the combination is on the measured
    /// frontier, else `predicted`. (For many combinations use `estimator()`, which indexes the frontier once.)
    public func estimate(_ choice: [Int]) -> Double {
        if let m = frontier?.first(where: { $0.choice == choice }) { return m.measured }
        return predicted(choice)
    }

    /// `estimate` for many combinations.
    public func estimator() -> ([Int]) -> Double {
        var table: [[Int]: Double] = [:]
        for m in frontier ?? [] { table[m.choice] = m.measured }
        return { c in table[c] ?? predicted(c) }
    }

    /// The model's estimate, never a measurement, in [0, 1]: what the held-out error is computed from.
    public func predicted(_ choice: [Int]) -> Double {
        if let model { return model.predict(choice) }
        return min(1, max(0, additive(choice)))
    }

    /// base − Σ fitted drops, unclamped.
    public func additive(_ choice: [Int]) -> Double {
        baseAccuracy - choice.enumerated().reduce(0) { $0 + fitted[$1.offset][$1.element] }
    }

    /// Name of the estimator `predicted` uses.
    public var estimatorName: String { model?.kind.rawValue ?? "additive" }

    /// The fitted additive drop of variant v at position p (in accuracy: what tables and the API show).
    public func scaledDrop(position p: Int, variant v: Int) -> Double { fitted[p][v] }

    /// The term the planner adds up for variant v at position p: minus the variant's score term when the package's
    /// model is `logisticAdditive` (the planner reads the sum through `plannerLink`), else the fitted drop.
    public func plannerDrop(position p: Int, variant v: Int) -> Double {
        if let model, model.kind == .logisticAdditive { return -model.unary[p][v] }
        return fitted[p][v]
    }

    /// How the planner reads a combination's summed `scaledDrop`s: through the model's logistic link when the model
    /// is `logisticAdditive` (then the planner ranks combinations exactly as `predicted` does), else nil
    /// (base − Σ drops: the additive drops, or a model with pair terms, which the chain search cannot express).
    public var plannerLink: AccuracyLink? {
        guard let model, model.kind == .logisticAdditive else { return nil }
        return AccuracyLink(floor: model.floor, ceiling: model.ceiling, score: model.bias)
    }

    /// Mean and max absolute error on the validation points of three additive estimators, for comparison: the plain
    /// sum of single-swap drops, those drops times one least-squares scale fitted on the calibration points
    /// (LegoDNN's calibration), and the fitted drops (clamped to [0, 1]). `choice` maps a point's ids to indices.
    public func comparison(choice: ([String]) -> [Int]) -> (singleSwap: (Double, Double), scaled: (Double, Double), fitted: (Double, Double)) {
        func sum(_ table: [[Double]], _ c: [Int]) -> Double { c.enumerated().reduce(0) { $0 + table[$1.offset][$1.element] } }
        var num = 0.0, den = 0.0
        for p in calibration { let d = sum(drops, choice(p.variants)); num += d * (baseAccuracy - p.measured); den += d * d }
        let scale = den > 1e-12 ? num / den : 1
        func errors(_ f: ([Int]) -> Double) -> (Double, Double) {
            AccuracyEstimator.errors(validation.map { ($0.measured, min(1, max(0, f(choice($0.variants))))) })
        }
        return (errors { baseAccuracy - sum(drops, $0) }, errors { baseAccuracy - scale * sum(drops, $0) },
                errors { baseAccuracy - sum(fitted, $0) })
    }

    enum CodingKeys: String, CodingKey {
        case drops, fitted, calibration, validation, model, candidates, frontier
        case baseAccuracy = "base_accuracy"
        case meanAbsError = "mean_abs_error"
        case maxAbsError = "max_abs_error"
        case validationImages = "validation_images"
    }

    /// Checks the fields added with the non-additive estimator (the others are checked by `PackageManifest`):
    /// shapes follow the blocks, indices are in range, every number is finite and bounded, lists are bounded.
    func validateModel(variantCounts n: [Int]) throws(PackageError) {
        typealias L = PackageLimits
        if let model { try model.validate(variantCounts: n, field: "accuracy.model") }
        if let candidates {
            guard candidates.count <= 16 else { throw .invalidManifest(field: "accuracy.candidates", message: "at most 16 estimators") }
            for (i, c) in candidates.enumerated() {
                let field = "accuracy.candidates[\(i)]"
                try L.text(c.name, "\(field).name", max: 64)
                if let e = c.crossValidationError { try L.number(e, "\(field).cross_validation_error", 0...1) }
                try L.number(c.meanAbsError, "\(field).mean_abs_error", 0...1)
                try L.number(c.maxAbsError, "\(field).max_abs_error", 0...1)
            }
        }
        if let frontier {
            guard frontier.count <= L.maxAccuracyPoints else { throw .invalidManifest(field: "accuracy.frontier", message: "at most \(L.maxAccuracyPoints) points") }
            for (i, m) in frontier.enumerated() {
                let field = "accuracy.frontier[\(i)]"
                guard m.choice.count == n.count, zip(m.choice, n).allSatisfy({ (0..<$1).contains($0) }) else {
                    throw .invalidManifest(field: "\(field).choice", message: "one variant index per block, each in range")
                }
                try L.number(m.measured, "\(field).measured", 0...1)
                try L.number(m.estimated, "\(field).estimated", 0...1)
            }
        }
    }
}

public enum AccuracyEstimator {
    /// Fewer calibration combinations than this leave the non-additive models too little to cross-validate on:
    /// the package then uses the additive drops.
    public static let minimumCalibrationForModels = 12
    /// The models' fits solve dense systems of this many unknowns at most (a 64-block package of 16 variants each
    /// would need 15,000: 1.8 GB per system); larger spaces keep the additive drops.
    public static let maxModelUnknowns = 1_500
    /// Pair-term ridge weights tried by cross-validation (variant terms get a tenth).
    static let ridgeGrid: [Double] = [1e-3, 1e-2, 1e-1, 1, 10]
    /// Lower asymptotes of the logistic link tried by cross-validation: chance level and half as much again,
    /// because a network with a block skipped near its input often stays a little above chance. (A higher floor
    /// lowers the mean error a little more but raises the worst one: it cannot follow the combinations that do fall
    /// to chance.)
    static func floorGrid(chance: Double) -> [Double] { [1, 1.5].map { min(0.5, $0 * chance) } }
    /// Upper asymptotes tried by cross-validation: 1, and closer and closer above the base accuracy. A model
    /// whose combinations never do much better than the original (an imported network, most of whose drops are
    /// near 0 until a block is skipped) is followed better by a link that saturates there: its drops then
    /// compound from the start instead of being absorbed by the flat top of a link reaching 1.
    static func ceilingGrid(base: Double) -> [Double] {
        let b = min(1, max(0, base))
        return [1] + [0.5, 0.2, 0.05].map { b + $0 * (1 - b) }.filter { $0 < 1 }
    }

    /// Measures single swaps, `calibrationCount` random combinations to fit on and `validationCount` other random
    /// combinations to report the error on, then up to `frontierCount` combinations on the frontier of
    /// (Σ `latencies`, estimated accuracy). Labels of `images` are used: it runs offline on the source domain's
    /// held-out split, never on a device.
    public static func fit(_ net: ElasticNetwork, images: LabeledImages, calibrationCount: Int, validationCount: Int,
                           frontierCount: Int = 0, latencies: [[Double]]? = nil, seed: UInt64,
                           progress: (Int, Int) -> Void = { _, _ in }) -> AccuracyEstimate {
        let saved = net.choice
        defer { net.compose(saved) }
        var estimate = fit(counts: net.variantBlocks.map(\.count), classes: net.architecture.classes,
                           calibrationCount: calibrationCount, validationCount: validationCount, frontierCount: frontierCount,
                           latencies: latencies, seed: seed, progress: progress,
                           measure: { c in
                               net.compose(c)
                               return Trainer.accuracy(net.model, images)
                           },
                           ids: { c in c.enumerated().map { net.positions[$0.offset].variants[$0.element].id } })
        estimate.validationImages = images.count
        return estimate
    }

    /// The estimator from measurements alone: `measure` runs a combination (variant index per position) on the
    /// validation images and returns its accuracy; nothing else about the network is needed.
    public static func fit(counts: [Int], classes: Int, calibrationCount: Int, validationCount: Int, frontierCount: Int,
                           latencies: [[Double]]?, seed: UInt64, progress: (Int, Int) -> Void,
                           measure run: ([Int]) -> Double, ids: ([Int]) -> [String]) -> AccuracyEstimate {
        let positions = counts.count
        let singles = counts.reduce(0) { $0 + $1 - 1 }
        let total = 1 + singles + calibrationCount + validationCount + (latencies == nil ? 0 : frontierCount)
        var done = 0
        func measure(_ choice: [Int]) -> Double {
            let a = run(choice)
            done += 1
            progress(done, total)
            return a
        }
        let zero = [Int](repeating: 0, count: positions)
        let base = measure(zero)
        var drops = counts.map { [Double](repeating: 0, count: $0) }
        var singleAccuracy = counts.map { [Double](repeating: base, count: $0) }
        var fixedRows: [([Int], Double)] = [(zero, base)]
        for p in 0..<positions {
            for v in 1..<max(1, counts[p]) {
                var c = zero
                c[p] = v
                singleAccuracy[p][v] = measure(c)
                drops[p][v] = base - singleAccuracy[p][v]
                fixedRows.append((c, singleAccuracy[p][v]))
            }
        }
        var rng = SeededRandom(seed: seed)
        var seen = Set<[Int]>()
        func randomCombination() -> [Int] {
            for _ in 0..<1000 {
                let c = counts.map { Int(rng.next() % UInt64($0)) }
                if c.filter({ $0 != 0 }).count >= 2, seen.insert(c).inserted { return c }
            }
            return counts.map { Int(rng.next() % UInt64($0)) }
        }
        let calibrationChoices = (0..<calibrationCount).map { _ in randomCombination() }
        let validationChoices = (0..<validationCount).map { _ in randomCombination() }
        let calibrationRows = calibrationChoices.map { ($0, measure($0)) }
        let validationRows = validationChoices.map { ($0, measure($0)) }

        let fitted = additive(base: base, drops: drops, calibration: calibrationRows)
        var estimate = AccuracyEstimate(baseAccuracy: base, drops: drops, fitted: fitted, calibration: [], validation: [],
                                        meanAbsError: 0, maxAbsError: 0, validationImages: 0)
        func heldOut(_ f: ([Int]) -> Double) -> (Double, Double) { errors(validationRows.map { ($0.1, f($0.0)) }) }

        // Choose by cross-validation on the calibration combinations (the single swaps stay in every training set),
        // so the held-out validation combinations only report.
        let chance = 1 / Double(max(2, classes))
        let folds = min(5, calibrationRows.count)
        func crossValidated(_ fitOn: ([([Int], Double)]) -> ([Int]) -> Double) -> Double {
            var pairs: [(Double, Double)] = []
            for k in 0..<folds {
                let train = calibrationRows.enumerated().filter { $0.offset % folds != k }.map(\.element)
                let f = fitOn(train)
                for (i, r) in calibrationRows.enumerated() where i % folds == k { pairs.append((r.1, f(r.0))) }
            }
            return errors(pairs).mean
        }
        var additiveCV: Double? = nil
        if folds >= 2 {
            additiveCV = crossValidated { train in
                let d = additive(base: base, drops: drops, calibration: train)
                return { c in min(1, max(0, base - c.enumerated().reduce(0) { $0 + d[$1.offset][$1.element] })) }
            }
        }
        let additiveHeldOut = heldOut { estimate.predicted($0) }
        var candidates = [AccuracyEstimate.Candidate(name: "additive", crossValidationError: additiveCV,
                                                     meanAbsError: additiveHeldOut.0, maxAbsError: additiveHeldOut.1)]
        // The package's model is the best by cross-validation among those the planner searches exactly (additive
        // in accuracy, or in the logistic score); the models with pair terms are fitted and reported alongside.
        var best: (cv: Double, model: AccuracyModel)? = nil
        if calibrationRows.count >= minimumCalibrationForModels {
            for kind in AccuracyModel.Kind.allCases
            where AccuracyModelFit.Features(counts: counts, pairs: kind.hasPairs).size <= maxModelUnknowns {
                func cv(ridge: Double, floor: Double, ceiling: Double) -> Double {
                    crossValidated { train in
                        AccuracyModelFit.fit(kind, counts: counts, rows: fixedRows + train, base: base, singles: singleAccuracy,
                                             floor: floor, ceiling: ceiling, ridge: ridge).predict
                    }
                }
                // The ridge weight at the chance-level floor and ceiling 1 first, then the floor at that weight, then
                // the ceiling, then the floor again at that ceiling (each kept only if it lowers the error).
                var kindBest = (cv: Double.infinity, ridge: ridgeGrid[0], floor: chance, ceiling: 1.0)
                for ridge in ridgeGrid {
                    let e = cv(ridge: ridge, floor: chance, ceiling: 1)
                    if e < kindBest.cv { kindBest = (e, ridge, chance, 1) }
                }
                if kind.isLogistic {
                    func tryFloors() {
                        for f in floorGrid(chance: chance) where f != kindBest.floor && f < kindBest.ceiling {
                            let e = cv(ridge: kindBest.ridge, floor: f, ceiling: kindBest.ceiling)
                            if e < kindBest.cv { kindBest = (e, kindBest.ridge, f, kindBest.ceiling) }
                        }
                    }
                    tryFloors()
                    for top in ceilingGrid(base: base).dropFirst() where top > kindBest.floor {
                        let e = cv(ridge: kindBest.ridge, floor: kindBest.floor, ceiling: top)
                        if e < kindBest.cv { kindBest = (e, kindBest.ridge, kindBest.floor, top) }
                    }
                    if kindBest.ceiling < 1 { tryFloors() }
                }
                let kb = kindBest
                let m = AccuracyModelFit.fit(kind, counts: counts, rows: fixedRows + calibrationRows, base: base, singles: singleAccuracy,
                                             floor: kb.floor, ceiling: kb.ceiling, ridge: kb.ridge)
                let e = heldOut(m.predict)
                candidates.append(.init(name: kind.rawValue, crossValidationError: kb.cv, meanAbsError: e.0, maxAbsError: e.1))
                if !kind.hasPairs, kb.cv < (additiveCV ?? .infinity), best == nil || kb.cv < best!.cv { best = (kb.cv, m) }
            }
        }
        estimate.model = best?.model
        estimate.candidates = candidates
        let chosen = heldOut { estimate.predicted($0) }
        estimate.meanAbsError = chosen.0
        estimate.maxAbsError = chosen.1
        estimate.calibration = calibrationRows.map { .init(variants: ids($0.0), measured: $0.1, estimated: estimate.predicted($0.0)) }
        estimate.validation = validationRows.map { .init(variants: ids($0.0), measured: $0.1, estimated: estimate.predicted($0.0)) }

        if let latencies, frontierCount > 0 {
            let targets = frontierChoices(counts: counts, latencies: latencies, estimate: estimate.predicted, count: frontierCount)
            estimate.frontier = targets.map { .init(choice: $0, measured: measure($0), estimated: estimate.predicted($0)) }
            while done < total { done += 1; progress(done, total) }
        }
        return estimate
    }

    /// Up to `count` combinations spread evenly along the Pareto frontier of (Σ latency, estimated accuracy), the
    /// most accurate one included; none if the space is too large to enumerate (more than 2^20 combinations).
    static func frontierChoices(counts: [Int], latencies: [[Double]], estimate: ([Int]) -> Double, count: Int) -> [[Int]] {
        guard latencies.count == counts.count, zip(latencies, counts).allSatisfy({ $0.count == $1 }) else { return [] }
        var product = 1
        for n in counts { product *= n; if product > 1 << 20 { return [] } }
        var all: [(choice: [Int], latency: Double, accuracy: Double)] = []
        all.reserveCapacity(product)
        var c = [Int](repeating: 0, count: counts.count)
        for _ in 0..<product {
            all.append((c, c.enumerated().reduce(0) { $0 + latencies[$1.offset][$1.element] }, estimate(c)))
            for p in stride(from: counts.count - 1, through: 0, by: -1) {
                c[p] += 1
                if c[p] < counts[p] { break }
                c[p] = 0
            }
        }
        let front = paretoStaircase(all, first: { $0.latency }, second: { -$0.accuracy }, tieBreak: { $0.choice.lexicographicallyPrecedes($1.choice) })
        guard front.count > count else { return front.map(\.choice) }
        // Evenly spaced indices from the fastest to the most accurate.
        let picks = Set((0..<count).map { i in count == 1 ? front.count - 1 : Int((Double(i) * Double(front.count - 1) / Double(count - 1)).rounded()) })
        return picks.sorted().map { front[$0].choice }
    }

    /// Mean and max absolute error of (measured, estimated) pairs.
    static func errors(_ pairs: [(Double, Double)]) -> (mean: Double, max: Double) {
        let e = pairs.map { abs($0.0 - $0.1) }
        return (e.isEmpty ? 0 : e.reduce(0, +) / Double(e.count), e.max() ?? 0)
    }

    /// The additive drops, refitted: ridge least squares over the variants, rows the single swaps and the
    /// calibration combinations, y = base − measured, x = the drops; the prior pulls each drop towards its
    /// single-swap measurement.
    static func additive(base: Double, drops: [[Double]], calibration: [([Int], Double)]) -> [[Double]] {
        var index: [[Int?]] = drops.map { $0.map { _ in nil } }
        var count = 0
        for p in drops.indices { for v in drops[p].indices where v > 0 { index[p][v] = count; count += 1 } }
        var rows: [([Int], Double)] = []
        for p in drops.indices { for v in drops[p].indices where v > 0 { rows.append(([index[p][v]!], drops[p][v])) } }
        for (c, m) in calibration {
            rows.append((c.enumerated().compactMap { index[$0.offset][$0.element] }, base - m))
        }
        var prior = [Double](repeating: 0, count: count)
        for p in drops.indices { for v in drops[p].indices where v > 0 { prior[index[p][v]!] = drops[p][v] } }
        let x = Self.ridge(rows: rows, unknowns: count, prior: prior, lambda: 0.05)
        return drops.indices.map { p in drops[p].indices.map { v in index[p][v].map { x[$0] } ?? 0 } }
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
