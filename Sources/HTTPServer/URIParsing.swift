/// Request-target parsing done by hand: Foundation's URL per request costs more than the whole MHD round trip,
/// and we must reject what URL would silently repair (bad `%` escapes, invalid UTF-8) with a 400.
enum URIParsing {
    /// Splits an origin-form target at the first `?`.
    static func split(_ target: String) -> (path: Substring, query: Substring?) {
        guard let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target[...], nil) }
        return (target[..<q], target[target.index(after: q)...])
    }

    /// Percent-decodes `s`; nil when an escape is malformed or the result is not UTF-8.
    static func decode(_ s: Substring, plusAsSpace: Bool) -> String? {
        let utf8 = s.utf8
        var needsWork = false
        for c in utf8 where c == UInt8(ascii: "%") || (plusAsSpace && c == UInt8(ascii: "+")) {
            needsWork = true
            break
        }
        if !needsWork { return String(s) }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count)
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let c = utf8[i]
            if c == UInt8(ascii: "%") {
                let h = utf8.index(after: i)
                guard h != utf8.endIndex else { return nil }
                let l = utf8.index(after: h)
                guard l != utf8.endIndex, let hi = hexValue(utf8[h]), let lo = hexValue(utf8[l]) else { return nil }
                out.append(hi << 4 | lo)
                i = utf8.index(after: l)
            } else {
                out.append(plusAsSpace && c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
                i = utf8.index(after: i)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// `a=1&b=x%20y&a=2` -> ["a": "2", "b": "x y"]; nil on a malformed escape.
    static func parseQuery(_ query: Substring) -> [String: String]? {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring, value: Substring
            if let eq = pair.utf8.firstIndex(of: UInt8(ascii: "=")) {
                name = pair[..<eq]
                value = pair[pair.index(after: eq)...]
            } else {
                name = pair
                value = ""
            }
            guard let n = decode(name, plusAsSpace: true), let v = decode(value, plusAsSpace: true) else {
                return nil
            }
            result[n] = v
        }
        return result
    }

    /// True when every `%` in `s` starts a two-hex-digit escape.
    static func hasValidEscapes(_ s: Substring) -> Bool {
        let utf8 = s.utf8
        var i = utf8.startIndex
        while let p = utf8[i...].firstIndex(of: UInt8(ascii: "%")) {
            let h = utf8.index(after: p)
            guard h != utf8.endIndex, hexValue(utf8[h]) != nil else { return false }
            let l = utf8.index(after: h)
            guard l != utf8.endIndex, hexValue(utf8[l]) != nil else { return false }
            i = utf8.index(after: l)
        }
        return true
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
