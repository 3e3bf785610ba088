import FleetAPI
import Foundation
import Testing
@testable import Rollout

/// Maintenance-window arithmetic against brute force: every minute of a week (and a few seconds into some minutes)
/// compared with a calendar-based reading of the same window, and the next opening and closing compared with a
/// minute-by-minute scan.
@Suite struct WindowScheduleTests {
    /// Monday 2026-11-30 00:00:00 UTC.
    static let monday = Date(timeIntervalSince1970: 1_795_996_800)

    static let utc: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()

    /// The window by its definition, through the calendar: open when the minute of day is in [start, end) on a listed
    /// day, or (a window past midnight) in [0, end) on the day after a listed day.
    static func naiveOpen(_ w: MaintenanceWindow, _ date: Date) -> Bool {
        let parts = utc.dateComponents([.weekday, .hour, .minute], from: date)
        let day = (parts.weekday! + 5) % 7   // Calendar: 1 = Sunday; ours: 0 = Monday
        let minute = parts.hour! * 60 + parts.minute!
        let days = Set(w.dayIndexes), s = w.startMinute!, e = w.endMinute!
        if e > s { return days.contains(day) && minute >= s && minute < e }
        return (days.contains(day) && minute >= s) || (days.contains((day + 6) % 7) && minute < e)
    }

    static let windows: [MaintenanceWindow] = [
        .init(days: ["mon"], start: "10:00", end: "11:00"),
        .init(days: ["mon", "wed", "fri"], start: "22:00", end: "02:00"),
        .init(days: ["sun"], start: "23:30", end: "00:30"),   // wraps past the end of the week
        .init(days: ["sat", "sun"], start: "00:00", end: "24:00"),
        .init(days: MaintenanceWindow.dayNames, start: "09:15", end: "09:16"),
        .init(days: ["tue", "wed"], start: "12:00", end: "11:59"),   // almost a whole day, overlapping the next one
    ]

    @Test func theMondayReferenceIsAMonday() {
        #expect(Self.utc.component(.weekday, from: Self.monday) == 2)
        #expect(WindowSchedule.minuteOfWeek(Self.monday).minute == 0)
        #expect(WindowSchedule.minuteOfWeek(Self.monday.addingTimeInterval(-60)).minute == WindowSchedule.minutesPerWeek - 1)
    }

    @Test(arguments: windows)
    func openMinuteByMinuteOverAWeekEqualsTheCalendar(window: MaintenanceWindow) {
        let schedule = WindowSchedule(window: window)
        var opened = 0
        // Two weeks, so the wrap at the end of the first week is crossed from both sides.
        for minute in 0..<(2 * WindowSchedule.minutesPerWeek) {
            for seconds in minute % 97 == 0 ? [0.0, 0.5, 59.999] : [0.0] {
                let t = Self.monday.addingTimeInterval(Double(minute) * 60 + seconds)
                let expected = Self.naiveOpen(window, t)
                if schedule.isOpen(at: t) != expected {
                    Issue.record("\(window) at \(t): \(!expected) instead of \(expected)")
                    return
                }
                if expected && seconds == 0 { opened += 1 }
            }
        }
        #expect(opened > 0)
    }

    @Test(arguments: windows)
    func nextOpeningAndClosingEqualAScan(window: MaintenanceWindow) {
        let schedule = WindowSchedule(window: window)
        for minute in stride(from: 0, to: WindowSchedule.minutesPerWeek, by: 7) {
            let t = Self.monday.addingTimeInterval(Double(minute) * 60 + 13)
            // The first whole minute (or `t` itself) at which the schedule is open, scanning forwards.
            var scan: Date?
            if schedule.isOpen(at: t) { scan = t } else {
                for k in 1...(WindowSchedule.minutesPerWeek + 1) {
                    let m = Self.monday.addingTimeInterval(Double(minute + k) * 60)
                    if schedule.isOpen(at: m) { scan = m; break }
                }
            }
            #expect(schedule.nextOpening(from: t) == scan, "\(window) from \(t)")
            if schedule.isOpen(at: t) {
                var close: Date?
                for k in 1...(WindowSchedule.minutesPerWeek + 1) {
                    let m = Self.monday.addingTimeInterval(Double(minute + k) * 60)
                    if !schedule.isOpen(at: m) { close = m; break }
                }
                #expect(schedule.nextClosing(from: t) == close, "\(window) closing from \(t)")
            }
        }
    }

    @Test func startAtHoldsUntilItAndThenTheWindowDecides() {
        let start = Self.monday.addingTimeInterval(3 * 86_400 + 600)   // Thursday 00:10
        let always = WindowSchedule(startAt: start)
        #expect(!always.isOpen(at: start.addingTimeInterval(-1)))
        #expect(always.isOpen(at: start))
        #expect(always.nextOpening(from: Self.monday) == start)
        #expect(always.nextClosing(from: start) == nil)
        let windowed = WindowSchedule(startAt: start, window: .init(days: ["mon"], start: "10:00", end: "11:00"))
        // Monday 10:30 is inside the window but before start_at; the next opening is the Monday after.
        #expect(!windowed.isOpen(at: Self.monday.addingTimeInterval(10.5 * 3600)))
        #expect(windowed.nextOpening(from: Self.monday.addingTimeInterval(10.5 * 3600)) == Self.monday.addingTimeInterval(7 * 86_400 + 10 * 3600))
    }

    @Test func malformedWindowsAreRefusedNamingTheField() {
        func fields(_ w: MaintenanceWindow) -> [String] {
            var v = Validator()
            w.validate(field: "window", into: &v)
            return v.issues.map(\.field)
        }
        #expect(fields(.init(days: ["mon"], start: "25:00", end: "02:00")) == ["window.start"])
        #expect(fields(.init(days: [], start: "01:00", end: "02:00")) == ["window.days"])
        #expect(fields(.init(days: ["mon", "mon"], start: "01:00", end: "02:00")) == ["window.days"])
        #expect(fields(.init(days: ["monday"], start: "01:00", end: "02:00")) == ["window.days"])
        #expect(fields(.init(days: ["mon"], start: "1:00", end: "02:00")) == ["window.start"])
        #expect(fields(.init(days: ["mon"], start: "01:00", end: "24:01")) == ["window.end"])
        #expect(fields(.init(days: ["mon"], start: "01:00", end: "01:00")) == ["window.end"])
        #expect(fields(.init(days: ["mon"], start: "00:00", end: "24:00")) == [])
        #expect(fields(.init(days: ["mon"], start: "+1:00", end: "02:60")) == ["window.start", "window.end"])
    }
}
