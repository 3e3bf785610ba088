import Foundation

/// The process's own Prometheus families, read from /proc at scrape time (Linux; elsewhere they are left out):
/// resident memory, CPU seconds, open file descriptors, start time, and `fleetadapt_build_info`.
public enum ProcessMetrics {
    public static func render() -> String {
        var out = "# HELP fleetadapt_build_info The running build: its version and git revision (always 1).\n# TYPE fleetadapt_build_info gauge\n"
        out += "fleetadapt_build_info{version=\"\(FleetAdaptVersion.version)\",revision=\"\(FleetAdaptVersion.revision)\"} 1\n"
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
            // Fields after the command name: state is field 3, utime 14, stime 15, starttime 22, rss 24.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 21, let utime = Double(fields[11]), let stime = Double(fields[12]), let start = Double(fields[19]), let rss = Double(fields[21]) {
                out += "# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.\n# TYPE process_cpu_seconds_total counter\n"
                out += "process_cpu_seconds_total \((utime + stime) / ticks)\n"
                out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n"
                out += "process_resident_memory_bytes \(rss * page)\n"
                if let uptime = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8), let up = Double(uptime.split(separator: " ").first ?? "") {
                    let started = Date().timeIntervalSince1970 - up + start / ticks
                    out += "# HELP process_start_time_seconds Start time of the process since the Unix epoch, in seconds.\n# TYPE process_start_time_seconds gauge\n"
                    out += "process_start_time_seconds \(started.rounded())\n"
                }
            }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            out += "# HELP process_open_fds Open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds \(fds.count)\n"
        }
        if let limits = try? String(contentsOfFile: "/proc/self/limits", encoding: .utf8),
           let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }),
           let soft = line.dropFirst("Max open files".count).split(separator: " ").first.flatMap({ Double($0) }) {
            out += "# HELP process_max_fds Most file descriptors the process may open.\n# TYPE process_max_fds gauge\nprocess_max_fds \(soft)\n"
        }
        return out
    }
}
