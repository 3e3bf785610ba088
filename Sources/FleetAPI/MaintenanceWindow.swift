import Foundation

/// A daily maintenance window in UTC, on some days of the week: `{"days": ["mon", "tue"], "start": "22:00",
/// "end": "02:00"}`. Waves are released only inside it. An `end` earlier than `start` runs past midnight into the
/// next day (the window belongs to the day it starts); `end` may be `24:00`. The arithmetic is `Rollout.WindowSchedule`.
public struct MaintenanceWindow: Codable, Sendable, Equatable {
    public var days: [String]
    public var start: String
    public var end: String

    public init(days: [String], start: String, end: String) {
        self.days = days
        self.start = start
        self.end = end
    }

    /// Day names in the order of the week, Monday first (ISO 8601).
    public static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    /// Minutes after midnight of "HH:MM" (00:00–23:59, and 24:00 when `allowEndOfDay`); nil when malformed.
    public static func minutes(_ text: String, allowEndOfDay: Bool = false) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2,
              parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
              let h = Int(parts[0]), let m = Int(parts[1]), m < 60 else { return nil }
        if h == 24 && m == 0 && allowEndOfDay { return 1440 }
        guard h < 24 else { return nil }
        return h * 60 + m
    }

    /// The days as indexes 0 (Monday) … 6 (Sunday); unknown names are left out (validation names them).
    public var dayIndexes: [Int] { days.compactMap { Self.dayNames.firstIndex(of: $0.lowercased()) } }
    public var startMinute: Int? { Self.minutes(start) }
    public var endMinute: Int? { Self.minutes(end, allowEndOfDay: true) }

    /// Issues naming `field.days`, `field.start`, `field.end`.
    public func validate(field: String, into v: inout Validator) {
        if days.isEmpty { v.fail("\(field).days", "must name at least one day: \(Self.dayNames.joined(separator: ", "))") }
        if days.count > 7 || Set(days.map { $0.lowercased() }).count != days.count {
            v.fail("\(field).days", "must not repeat a day")
        } else if let bad = days.first(where: { !Self.dayNames.contains($0.lowercased()) }) {
            v.fail("\(field).days", "'\(bad.prefix(16))' is not a day; use \(Self.dayNames.joined(separator: ", "))")
        }
        let s = startMinute, e = endMinute
        if s == nil { v.fail("\(field).start", "must be a UTC time HH:MM from 00:00 to 23:59") }
        if e == nil { v.fail("\(field).end", "must be a UTC time HH:MM from 00:00 to 24:00") }
        if let s, let e, s == e { v.fail("\(field).end", "must differ from start (a window of no time never opens)") }
    }
}
