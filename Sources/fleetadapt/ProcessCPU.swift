import Foundation

/// CPU time (user + system) the coordinator and its PostgreSQL server have used, read from /proc. On a machine
/// whose cores other work shares, requests/s say as much about the neighbours as about the coordinator; CPU time
/// per request does not, so the benchmarks print it beside their rates.
struct ProcessCPU {
    /// The postmaster of the embedded cluster; its backends are its children (those that exited are in its
    /// children's totals once reaped).
    let postmaster: pid_t?

    /// Seconds of CPU used so far by this process's threads, the postmaster, its children, and their reaped children.
    func seconds() -> Double {
        var ticks = Self.ticks(pid: "self", includingReaped: false)
        if let postmaster {
            ticks += Self.ticks(pid: String(postmaster), includingReaped: true)
            for child in Self.children(of: postmaster) { ticks += Self.ticks(pid: String(child), includingReaped: false) }
        }
        return Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// utime + stime (fields 14 and 15 of /proc/<pid>/stat), plus cutime + cstime (16, 17) when asked.
    private static func ticks(pid: String, includingReaped: Bool) -> Int {
        guard let fields = statFields(pid) else { return 0 }
        let own = (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
        return includingReaped ? own + (Int(fields[13]) ?? 0) + (Int(fields[14]) ?? 0) : own
    }

    /// The fields after the command name (which may hold spaces), so index 0 is field 3 (state).
    private static func statFields(_ pid: String) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    private static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            statFields(String(pid)).flatMap { $0.count > 1 ? pid_t($0[1]) : nil } == parent
        }
    }
}
