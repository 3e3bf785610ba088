import Foundation
import Synchronization

/// Process-local counters and latency histograms rendered in Prometheus text format at `GET /metrics`.
/// Each replica exports its own; Prometheus sums them.
package final class Metrics: Sendable {
    private struct RouteKey: Hashable {
        package let method: String
        package let route: String
        package let status: Int
    }

    private struct Histogram {
        package var buckets: [Int]
        package var sum: Double = 0
        package var count: Int = 0
    }

    package init() {}

    /// Seconds; from a fast cached read to a long-poll.
    package static let bucketBounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    private let requests = Mutex<[RouteKey: Int]>([:])
    private let durations = Mutex<[String: Histogram]>([:])
    private let gauges = Mutex<[String: (help: String, read: @Sendable () -> [(labels: String, value: Double)])]>([:])

    package func observe(method: String, route: String, status: Int, seconds: Double) {
        requests.withLock { $0[RouteKey(method: method, route: route, status: status), default: 0] += 1 }
        durations.withLock { table in
            var h = table[route] ?? Histogram(buckets: Array(repeating: 0, count: Self.bucketBounds.count))
            for (i, bound) in Self.bucketBounds.enumerated() where seconds <= bound { h.buckets[i] += 1 }
            h.sum += seconds
            h.count += 1
            table[route] = h
        }
    }

    /// Registers a gauge read at scrape time (queue depth per state, devices per status, ...).
    package func gauge(_ name: String, help: String, read: @escaping @Sendable () -> [(labels: String, value: Double)]) {
        gauges.withLock { $0[name] = (help, read) }
    }

    package func render() -> String {
        var out = "# HELP fleetadapt_http_requests_total HTTP requests by method, route pattern and status.\n"
        out += "# TYPE fleetadapt_http_requests_total counter\n"
        for (key, count) in requests.withLock({ $0 }).sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out += "fleetadapt_http_requests_total{method=\"\(key.method)\",route=\"\(Self.escape(key.route))\",status=\"\(key.status)\"} \(count)\n"
        }
        out += "# HELP fleetadapt_http_request_duration_seconds Time from request to response, by route pattern.\n"
        out += "# TYPE fleetadapt_http_request_duration_seconds histogram\n"
        for (route, h) in durations.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            let r = Self.escape(route)
            for (i, bound) in Self.bucketBounds.enumerated() {
                out += "fleetadapt_http_request_duration_seconds_bucket{route=\"\(r)\",le=\"\(bound)\"} \(h.buckets[i])\n"
            }
            out += "fleetadapt_http_request_duration_seconds_bucket{route=\"\(r)\",le=\"+Inf\"} \(h.count)\n"
            out += "fleetadapt_http_request_duration_seconds_sum{route=\"\(r)\"} \(h.sum)\n"
            out += "fleetadapt_http_request_duration_seconds_count{route=\"\(r)\"} \(h.count)\n"
        }
        for (name, gauge) in gauges.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            out += "# HELP \(name) \(gauge.help)\n# TYPE \(name) gauge\n"
            for sample in gauge.read() {
                out += sample.labels.isEmpty ? "\(name) \(sample.value)\n" : "\(name){\(sample.labels)} \(sample.value)\n"
            }
        }
        return out
    }

    package static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
