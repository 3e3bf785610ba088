/// Fixed-point rendering for reasons, without Foundation's `String(format:)`.
func fixed(_ x: Double, _ digits: Int) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(x) * scale).rounded()
    if scaled >= 9.0e18 { return x > 0 ? "\(x)" : "-\(-x)" }
    let n = UInt64(scaled)
    let pow = UInt64(scale)
    let whole = n / pow, frac = n % pow
    let sign = x < 0 && n != 0 ? "-" : ""
    guard digits > 0 else { return "\(sign)\(whole)" }
    let f = String(frac)
    return "\(sign)\(whole).\(String(repeating: "0", count: digits - f.count))\(f)"
}

/// A ratio as a percentage over 100 %: 1.234 → "23.4%".
func overrun(_ ratio: Double) -> String { "\(fixed((ratio - 1) * 100, 1))%" }
