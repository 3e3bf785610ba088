import CommandSupport
import Foundation
import HTTPServer
import Synchronization

/// The edge server's `/metrics`: its HTTP requests (counter by method, route pattern and status; duration
/// histogram by method and route pattern), fed from the server's access entries, and the process's own families.
final class EdgeMetrics: Sendable {
    private struct Key: Hashable { var method: String; var route: String; var status: Int }
    private struct DurationKey: Hashable { var method: String; var route: String }
    private struct Histogram { var buckets: [Int]; var sum = 0.0; var count = 0 }
    static let bounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    private let requests = Mutex<[Key: Int]>([:])
    private let durations = Mutex<[DurationKey: Histogram]>([:])

    func observe(_ entry: AccessLogEntry) {
        requests.withLock { $0[Key(method: entry.method, route: entry.route, status: entry.status), default: 0] += 1 }
        durations.withLock { table in
            let key = DurationKey(method: entry.method, route: entry.route)
            var h = table[key] ?? Histogram(buckets: Array(repeating: 0, count: Self.bounds.count))
            for (i, bound) in Self.bounds.enumerated() where entry.seconds <= bound { h.buckets[i] += 1 }
            h.sum += entry.seconds
            h.count += 1
            table[key] = h
        }
    }

    func render(sessions: Int) -> String {
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        var out = "# HELP fleetadapt_edge_http_requests_total HTTP requests by method, route pattern and status.\n# TYPE fleetadapt_edge_http_requests_total counter\n"
        for (k, n) in requests.withLock({ $0 }).sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out += "fleetadapt_edge_http_requests_total{method=\"\(k.method)\",route=\"\(esc(k.route))\",status=\"\(k.status)\"} \(n)\n"
        }
        out += "# HELP fleetadapt_edge_http_request_duration_seconds Time from request to response, by method and route pattern.\n# TYPE fleetadapt_edge_http_request_duration_seconds histogram\n"
        for (k, h) in durations.withLock({ $0 }).sorted(by: { ($0.key.route, $0.key.method) < ($1.key.route, $1.key.method) }) {
            let labels = "method=\"\(k.method)\",route=\"\(esc(k.route))\""
            for (i, bound) in Self.bounds.enumerated() {
                out += "fleetadapt_edge_http_request_duration_seconds_bucket{\(labels),le=\"\(bound)\"} \(h.buckets[i])\n"
            }
            out += "fleetadapt_edge_http_request_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(h.count)\n"
            out += "fleetadapt_edge_http_request_duration_seconds_sum{\(labels)} \(h.sum)\n"
            out += "fleetadapt_edge_http_request_duration_seconds_count{\(labels)} \(h.count)\n"
        }
        out += "# HELP fleetadapt_edge_sessions Device sessions held in memory.\n# TYPE fleetadapt_edge_sessions gauge\nfleetadapt_edge_sessions \(sessions)\n"
        return out + ProcessMetrics.render()
    }
}
