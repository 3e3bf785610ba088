import Foundation

/// A non-additive accuracy estimator over a package's combinations. A combination's *score* is a bias plus one
/// term per derived variant it runs plus one term per pair of derived variants at neighbouring positions (the
/// interactions an additive model cannot express: two changed blocks in a row hurt more, or less, than apart).
/// `pairwise` reads the score as the accuracy itself; `logistic` reads it through a logistic link from near chance
/// level (`floor`) to `ceiling` (1, or just above the base accuracy for a model whose combinations never do much
/// better than the original), so drops compound towards chance as more blocks change and no estimate leaves
/// [floor, ceiling]. Both are fitted on measured combinations only (`AccuracyModelFit`), nothing about the family, so
/// they apply unchanged to any package whose positions hold interchangeable variants.
public struct AccuracyModel: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case pairwise, logistic
        /// The logistic link over the variant terms alone (no pair terms): a sum per variant, so the planner's
        /// chain search ranks combinations exactly as this model does.
        case logisticAdditive = "logistic-additive"

        /// Whether the model has pair terms.
        public var hasPairs: Bool { self != .logisticAdditive }
        /// Whether the score goes through the logistic link.
        public var isLogistic: Bool { self != .pairwise }
    }

    public var kind: Kind
    /// Lower asymptote of the logistic link: chance accuracy, 1 / classes (0 for `pairwise`).
    public var floor: Double
    /// Upper asymptote of the logistic link (1 for `pairwise`, and for packages built before it existed).
    public var ceiling: Double
    public var bias: Double
    /// `[position][variant]`, 0 for the original (s0).
    public var unary: [[Double]]
    /// `[position][variant][variant at position + 1]`, 0 where either is the original.
    public var pairs: [[[Double]]]
    /// The ridge weight of the pair terms the fit chose by cross-validation (for the record).
    public var ridge: Double

    public func score(_ c: [Int]) -> Double {
        var s = bias
        for p in c.indices { s += unary[p][c[p]] }
        for p in pairs.indices { s += pairs[p][c[p]][c[p + 1]] }
        return s
    }

    /// The estimated accuracy, always in [0, 1].
    public func predict(_ c: [Int]) -> Double {
        let s = score(c)
        switch kind {
        case .pairwise: return min(1, max(0, s))
        case .logistic, .logisticAdditive: return Self.accuracy(score: s, floor: floor, ceiling: ceiling)
        }
    }

    /// floor + (ceiling − floor) σ(score), in [0, 1].
    public static func accuracy(score s: Double, floor: Double, ceiling: Double = 1) -> Double {
        min(1, max(0, floor + (ceiling - floor) * sigmoid(s)))
    }

    static func sigmoid(_ s: Double) -> Double { s >= 0 ? 1 / (1 + exp(-s)) : exp(s) / (1 + exp(s)) }

    /// Largest magnitude of a score term: logits beyond ±50 are 0 or 1 in double precision anyway.
    public static let maxTerm = 1e3

    public init(kind: Kind, floor: Double, ceiling: Double = 1, bias: Double, unary: [[Double]], pairs: [[[Double]]], ridge: Double) {
        self.kind = kind
        self.floor = floor
        self.ceiling = ceiling
        self.bias = bias
        self.unary = unary
        self.pairs = pairs
        self.ridge = ridge
    }

    /// A package built before the ceiling existed reads with ceiling 1.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        floor = try c.decode(Double.self, forKey: .floor)
        ceiling = try c.decodeIfPresent(Double.self, forKey: .ceiling) ?? 1
        bias = try c.decode(Double.self, forKey: .bias)
        unary = try c.decode([[Double]].self, forKey: .unary)
        pairs = try c.decode([[[Double]]].self, forKey: .pairs)
        ridge = try c.decode(Double.self, forKey: .ridge)
    }

    enum CodingKeys: String, CodingKey {
        case kind, floor, ceiling, bias, unary, pairs, ridge
    }

    /// Shapes follow the blocks (so nothing is sized by the manifest beyond what its blocks already bound) and
    /// every number is finite and bounded, so `score` can neither index out of range nor overflow.
    func validate(variantCounts n: [Int], field: String) throws(PackageError) {
        func bad(_ f: String, _ why: String) -> PackageError { .invalidManifest(field: f, message: why) }
        try PackageLimits.number(floor, "\(field).floor", 0...0.5)
        try PackageLimits.number(ceiling, "\(field).ceiling", 0...1)
        guard ceiling > floor else { throw bad("\(field).ceiling", "must be above the floor") }
        try PackageLimits.number(bias, "\(field).bias", -Self.maxTerm...Self.maxTerm)
        try PackageLimits.number(ridge, "\(field).ridge", 0...1e12)
        guard unary.count == n.count, zip(unary, n).allSatisfy({ $0.count == $1 }) else {
            throw bad("\(field).unary", "one term per variant of every block")
        }
        for (p, row) in unary.enumerated() {
            for (v, x) in row.enumerated() { try PackageLimits.number(x, "\(field).unary[\(p)][\(v)]", -Self.maxTerm...Self.maxTerm) }
        }
        guard pairs.count == max(0, n.count - 1) else { throw bad("\(field).pairs", "one table per pair of neighbouring blocks") }
        for (p, table) in pairs.enumerated() {
            guard table.count == n[p], table.allSatisfy({ $0.count == n[p + 1] }) else {
                throw bad("\(field).pairs[\(p)]", "one term per variant of block \(p) × variant of block \(p + 1)")
            }
            for (v, row) in table.enumerated() {
                for (w, x) in row.enumerated() {
                    try PackageLimits.number(x, "\(field).pairs[\(p)][\(v)][\(w)]", -Self.maxTerm...Self.maxTerm)
                    if !kind.hasPairs, x != 0 { throw bad("\(field).pairs[\(p)][\(v)][\(w)]", "must be 0: a \(kind.rawValue) model has no pair terms") }
                }
            }
        }
    }
}

/// Fits `AccuracyModel`s by (regularised) least squares on measured accuracies: closed-form ridge regression for
/// `pairwise`, Levenberg–Marquardt for `logistic` (the same objective through the link). Each variant's term is
/// pulled towards what its single swap implies (weight `ridge / 10`), each pair term towards 0 (`ridge`).
enum AccuracyModelFit {
    /// The unknowns, numbered: 0 the bias, then one per derived variant, then one per pair of derived variants at
    /// neighbouring positions.
    struct Features {
        let counts: [Int]
        private(set) var unaryIndex: [[Int]] = []
        private(set) var pairIndex: [[[Int]]] = []
        private(set) var size = 1

        init(counts: [Int], pairs: Bool = true) {
            self.counts = counts
            var next = 1
            for n in counts {
                var row: [Int] = []
                for v in 0..<n { row.append(v == 0 ? -1 : next); if v > 0 { next += 1 } }
                unaryIndex.append(row)
            }
            for p in 0..<max(0, counts.count - 1) {
                var table: [[Int]] = []
                for v in 0..<counts[p] {
                    var row: [Int] = []
                    for w in 0..<counts[p + 1] {
                        let derived = pairs && v > 0 && w > 0
                        row.append(derived ? next : -1)
                        if derived { next += 1 }
                    }
                    table.append(row)
                }
                pairIndex.append(table)
            }
            size = next
        }

        /// Indices of the unknowns that are 1 for combination c (all others are 0).
        func active(_ c: [Int]) -> [Int] {
            var out = [0]
            for p in c.indices where unaryIndex[p][c[p]] >= 0 { out.append(unaryIndex[p][c[p]]) }
            for p in pairIndex.indices where pairIndex[p][c[p]][c[p + 1]] >= 0 { out.append(pairIndex[p][c[p]][c[p + 1]]) }
            return out
        }

        func model(_ kind: AccuracyModel.Kind, _ x: [Double], floor: Double, ceiling: Double = 1, ridge: Double) -> AccuracyModel {
            AccuracyModel(kind: kind, floor: floor, ceiling: ceiling, bias: x[0],
                          unary: unaryIndex.map { $0.map { $0 < 0 ? 0 : x[$0] } },
                          pairs: pairIndex.map { $0.map { $0.map { $0 < 0 ? 0 : x[$0] } } }, ridge: ridge)
        }
    }

    /// The score a kind's link needs to output accuracy a (clamped away from the asymptotes).
    static func link(_ kind: AccuracyModel.Kind, _ a: Double, floor: Double, ceiling: Double) -> Double {
        switch kind {
        case .pairwise: return a
        case .logistic, .logisticAdditive:
            let r = min(0.995, max(0.005, (a - floor) / (ceiling - floor)))
            return log(r / (1 - r))
        }
    }

    /// Fits a model on measured `rows` (combination, accuracy). `base` and `singles[p][v]` (measured accuracy of
    /// the single swap) give the prior the variant terms are pulled towards.
    static func fit(_ kind: AccuracyModel.Kind, counts: [Int], rows: [([Int], Double)], base: Double, singles: [[Double]],
                    floor: Double, ceiling: Double = 1, ridge: Double) -> AccuracyModel {
        let f = Features(counts: counts, pairs: kind.hasPairs)
        var prior = [Double](repeating: 0, count: f.size)
        var weight = [Double](repeating: ridge, count: f.size)
        let b = link(kind, base, floor: floor, ceiling: ceiling)
        prior[0] = b
        weight[0] = 1e-9
        for p in counts.indices {
            for v in 1..<max(1, counts[p]) where f.unaryIndex[p][v] >= 0 {
                prior[f.unaryIndex[p][v]] = link(kind, singles[p][v], floor: floor, ceiling: ceiling) - b
                weight[f.unaryIndex[p][v]] = ridge / 10
            }
        }
        let sparse = rows.map { (f.active($0.0), $0.1) }
        let (floorUsed, ceilingUsed) = kind.isLogistic ? (floor, ceiling) : (0, 1)
        let x: [Double]
        switch kind {
        case .pairwise: x = linearRidge(sparse, size: f.size, prior: prior, weight: weight)
        case .logistic, .logisticAdditive:
            x = logisticFit(sparse, size: f.size, prior: prior, weight: weight, floor: floor, ceiling: ceiling)
        }
        return f.model(kind, x, floor: floorUsed, ceiling: ceilingUsed, ridge: ridge)
    }

    /// argmin ‖Ax − y‖² + Σ wⱼ (xⱼ − priorⱼ)², A's rows 0/1 given by their ones: the normal equations, by Cholesky.
    static func linearRidge(_ rows: [([Int], Double)], size n: Int, prior: [Double], weight: [Double]) -> [Double] {
        var h = [Double](repeating: 0, count: n * n)
        var g = [Double](repeating: 0, count: n)
        for j in 0..<n { h[j * n + j] = weight[j]; g[j] = weight[j] * prior[j] }
        for (ones, y) in rows {
            for i in ones {
                g[i] += y
                for j in ones { h[i * n + j] += 1 }
            }
        }
        return solve(h, g, n) ?? prior
    }

    /// Levenberg–Marquardt on Σ (y − floor − (ceiling − floor) σ(a·x))² + Σ wⱼ (xⱼ − priorⱼ)², from the prior; a
    /// step is kept only if it lowers the objective, so the result is never worse than the prior.
    static func logisticFit(_ rows: [([Int], Double)], size n: Int, prior: [Double], weight: [Double], floor: Double,
                            ceiling: Double = 1, iterations: Int = 200) -> [Double] {
        let span = ceiling - floor
        func objective(_ x: [Double]) -> Double {
            var total = 0.0
            for (ones, y) in rows {
                let s = ones.reduce(0.0) { $0 + x[$1] }
                let e = y - floor - span * AccuracyModel.sigmoid(s)
                total += e * e
            }
            for j in 0..<n { total += weight[j] * (x[j] - prior[j]) * (x[j] - prior[j]) }
            return total
        }
        var x = prior
        var current = objective(x)
        var mu = 1e-3
        for _ in 0..<iterations {
            var h = [Double](repeating: 0, count: n * n)
            var g = [Double](repeating: 0, count: n)
            for j in 0..<n { h[j * n + j] = weight[j]; g[j] = -weight[j] * (x[j] - prior[j]) }
            for (ones, y) in rows {
                let s = ones.reduce(0.0) { $0 + x[$1] }
                let sg = AccuracyModel.sigmoid(s)
                let d = span * sg * (1 - sg)
                let e = y - floor - span * sg
                for i in ones {
                    g[i] += d * e
                    for j in ones { h[i * n + j] += d * d }
                }
            }
            var improved = false
            for _ in 0..<12 {
                var damped = h
                for j in 0..<n { damped[j * n + j] += mu * max(h[j * n + j], 1e-12) }
                guard let step = solve(damped, g, n) else { mu *= 10; continue }
                let trial = zip(x, step).map { min(AccuracyModel.maxTerm, max(-AccuracyModel.maxTerm, $0 + $1)) }
                let value = objective(trial)
                if value < current {
                    let gain = current - value
                    x = trial
                    current = value
                    mu = max(1e-9, mu / 3)
                    improved = gain > 1e-14 * max(1, current)
                    break
                }
                mu *= 4
            }
            if !improved { break }
        }
        return x
    }

    /// Solves H z = g for a symmetric positive definite H (row-major n × n) by Cholesky; nil if H is not.
    static func solve(_ h: [Double], _ g: [Double], _ n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = h[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard s > 0, s.isFinite else { return nil }
                    l[i * n + i] = s.squareRoot()
                } else {
                    l[i * n + j] = s / l[j * n + j]
                }
            }
        }
        var z = g
        for i in 0..<n {
            var s = z[i]
            for k in 0..<i { s -= l[i * n + k] * z[k] }
            z[i] = s / l[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = z[i]
            for k in (i + 1)..<n { s -= l[k * n + i] * z[k] }
            z[i] = s / l[i * n + i]
        }
        return z
    }
}
