/// A problem with one field of a request body, named by its JSON path (`hardware.gflops`),
/// kept free of HTTP so the agent and the CLI can validate with the same rules as the coordinator.
public struct ValidationIssue: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Collects issues while a body is checked, so one answer lists every bad field at once.
public struct Validator: Sendable {
    public private(set) var issues: [ValidationIssue] = []

    public init() {}

    public var isValid: Bool { issues.isEmpty }

    public mutating func fail(_ field: String, _ message: String) {
        issues.append(ValidationIssue(field: field, message: message))
    }

    /// Requires a present value; records "is required" otherwise.
    public mutating func require<T>(_ value: T?, _ field: String) -> T? {
        if value == nil { fail(field, "is required") }
        return value
    }

    /// Checks a finite number inside a closed or half-open range. JSON has no NaN, but 1e999 decodes as infinity.
    public mutating func number(_ value: Double?, _ field: String, min: Double, max: Double,
                                minExclusive: Bool = false, required: Bool = true) {
        guard let value else {
            if required { fail(field, "is required") }
            return
        }
        guard value.isFinite else { return fail(field, "must be a finite number") }
        if minExclusive ? value <= min : value < min {
            fail(field, minExclusive ? "must be greater than \(Self.format(min))" : "must be at least \(Self.format(min))")
        } else if value > max {
            fail(field, "must be at most \(Self.format(max))")
        }
    }

    /// Checks a string's length in characters after trimming surrounding whitespace.
    public mutating func text(_ value: String?, _ field: String, minLength: Int = 1, maxLength: Int,
                              required: Bool = true) {
        guard let value else {
            if required { fail(field, "is required") }
            return
        }
        let trimmed = value.trimmingWhitespace
        if trimmed.count < minLength {
            fail(field, minLength == 1 ? "must not be empty" : "must have at least \(minLength) characters")
        } else if value.count > maxLength {
            fail(field, "must have at most \(maxLength) characters")
        }
    }

    static func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
