import Foundation

/// One axis of a chart: a range widened to round ticks (1, 2, 2.5 or 5 × 10ⁿ apart) and optionally held inside
/// hard limits, so that an accuracy axis never runs below 0 or above 1 and its labels read 0.60 / 0.70 / 0.80
/// instead of 0.512 / 0.828. Every chart FleetAdapt draws takes its axes from here.
public struct PlotAxis: Sendable, Equatable {
    public let lower: Double
    public let upper: Double
    public let step: Double

    /// - Parameters:
    ///   - values: what the axis must show (empty: `limits` or 0…1).
    ///   - limits: the axis never extends past these (e.g. 0…1 for a fraction).
    ///   - targetTicks: about how many intervals to aim for.
    public init(covering values: [Double], limits: ClosedRange<Double>? = nil, targetTicks: Int = 5) {
        let finite = values.filter(\.isFinite).map { v in limits.map { min(max(v, $0.lowerBound), $0.upperBound) } ?? v }
        var lo = finite.min() ?? limits?.lowerBound ?? 0
        var hi = finite.max() ?? limits?.upperBound ?? 1
        if hi - lo < 1e-12 {
            let pad = max(abs(lo) * 0.05, 0.01)
            lo -= pad
            hi += pad
        }
        let step = Self.roundStep((hi - lo) / Double(max(targetTicks, 1)))
        lo = (lo / step).rounded(.down) * step
        hi = (hi / step).rounded(.up) * step
        if let limits {
            lo = max(lo, limits.lowerBound)
            hi = min(hi, limits.upperBound)
        }
        self.lower = lo
        self.upper = hi
        self.step = step
    }

    /// The tick values from `lower` to `upper`, multiples of `step` (plus the limits when they are not multiples).
    public var ticks: [Double] {
        var out: [Double] = []
        var i = (lower / step - 1e-9).rounded(.up)
        while i * step <= upper + step * 1e-9 {
            out.append(i * step)
            i += 1
        }
        return out
    }

    /// A label with as many decimals as the step needs (0.25 → 2, 0.1 → 1, 5 → 0).
    public func label(_ value: Double) -> String {
        let decimals = max(0, Int((-log10(step)).rounded(.up) + (Self.isMultiple(step, of: 2.5) ? 1 : 0)))
        return String(format: "%.\(min(decimals, 6))f", abs(value) < step * 1e-9 ? 0 : value)
    }

    /// Where `value` falls, 0 at `lower` and 1 at `upper`.
    public func fraction(_ value: Double) -> Double {
        (value - lower) / max(upper - lower, 1e-12)
    }

    static func roundStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        for m in [1.0, 2.0, 2.5, 5.0, 10.0] where raw <= m * magnitude * (1 + 1e-9) { return m * magnitude }
        return 10 * magnitude
    }

    /// Whether step is 2.5 × 10ⁿ, whose labels need one more decimal than 10ⁿ⁺¹ (0.25, not 0.3).
    static func isMultiple(_ step: Double, of m: Double) -> Bool {
        let magnitude = pow(10, (log10(step / m)).rounded())
        return abs(step - m * magnitude) < step * 1e-9
    }
}
