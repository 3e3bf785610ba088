import FleetAPI
import Foundation

/// When a campaign may release waves: not before `start_at`, and only inside its maintenance window (daily UTC
/// windows on some days of the week, `FleetAPI.MaintenanceWindow`). Pure integer arithmetic over the minute of the
/// week (Monday 00:00 UTC = 0): no calendar, no time zone database, so it is the same on every replica.
public struct WindowSchedule: Sendable, Equatable {
    public static let minutesPerDay = 1440
    public static let minutesPerWeek = 7 * 1440

    /// Half-open intervals [start, end) in minutes of the week; an interval may end past the week (it wraps).
    public let intervals: [Range<Int>]
    public let startAt: Date?
    /// Whether a window restricts the schedule at all (false: always open after `startAt`).
    public let windowed: Bool

    /// - Parameter window: a window that passed `MaintenanceWindow.validate` (a malformed one opens never).
    public init(startAt: Date? = nil, window: MaintenanceWindow? = nil) {
        self.startAt = startAt
        guard let window else {
            intervals = []
            windowed = false
            return
        }
        windowed = true
        guard let s = window.startMinute, let e = window.endMinute, s != e else {
            intervals = []
            return
        }
        let length = e > s ? e - s : e + Self.minutesPerDay - s
        intervals = Set(window.dayIndexes).sorted().map { d in (d * Self.minutesPerDay + s)..<(d * Self.minutesPerDay + s + length) }
    }

    /// The minute of the week of `date` (Monday 00:00 UTC = 0) and the seconds into that minute. 1970-01-01 was a
    /// Thursday (day 3 of a Monday-first week).
    public static func minuteOfWeek(_ date: Date) -> (minute: Int, seconds: Double) {
        let t = date.timeIntervalSince1970
        let whole = (t / 60).rounded(.down)
        let minute = ((Int(whole) + 3 * minutesPerDay) % minutesPerWeek + minutesPerWeek) % minutesPerWeek
        return (minute, t - whole * 60)
    }

    /// Whether minute `m` of the week (0..<10080) falls in the window.
    public func windowContains(minute m: Int) -> Bool {
        guard windowed else { return true }
        return intervals.contains { $0.contains(m) || $0.contains(m + Self.minutesPerWeek) }
    }

    /// Whether waves may be released at `date`.
    public func isOpen(at date: Date) -> Bool {
        if let startAt, date < startAt { return false }
        return windowContains(minute: Self.minuteOfWeek(date).minute)
    }

    /// The first instant at or after `date` when the schedule is open (`date` itself when open); nil when it never
    /// opens (a window with no valid interval).
    public func nextOpening(from date: Date) -> Date? {
        var from = date
        if let startAt, from < startAt { from = startAt }
        guard windowed else { return from }
        guard !intervals.isEmpty else { return nil }
        let (m, seconds) = Self.minuteOfWeek(from)
        if windowContains(minute: m) { return from }
        // The nearest interval start after m, going round the week once.
        var best = Int.max
        for i in intervals {
            let s = i.lowerBound % Self.minutesPerWeek
            let ahead = s > m ? s - m : s + Self.minutesPerWeek - m
            best = min(best, ahead)
        }
        return from.addingTimeInterval(Double(best) * 60 - seconds)
    }

    /// The first instant after `date` at which the open schedule closes (nil when open and it never closes: no
    /// window, or windows covering the whole week). Only meaningful when `isOpen(at: date)`.
    public func nextClosing(from date: Date) -> Date? {
        guard windowed else { return nil }
        let (m, seconds) = Self.minuteOfWeek(date)
        var minute = m, steps = 0
        while windowContains(minute: minute % Self.minutesPerWeek) {
            minute += 1
            steps += 1
            if steps > Self.minutesPerWeek { return nil }
        }
        return date.addingTimeInterval(Double(steps) * 60 - seconds)
    }
}
