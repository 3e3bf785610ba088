import Foundation
import Synchronization

/// Process-local counters, gauges and histograms rendered in Prometheus text format at `GET /metrics`.
/// Each replica exports its own; Prometheus sums them. Families with database state (jobs by state, devices by
/// status, ...) are read at scrape time by collectors the process registers (`collect`).
package final class Metrics: Sendable {
    private struct RouteKey: Hashable {
        package let method: String
        package let route: String
        package let status: Int
    }

    private struct DurationKey: Hashable {
        package let method: String
        package let route: String
    }

    package struct Histogram: Sendable {
        package var buckets: [Int]
        package var sum: Double = 0
        package var count: Int = 0

        package init(bounds: Int) { buckets = Array(repeating: 0, count: bounds) }

        package mutating func observe(_ value: Double, bounds: [Double]) {
            for (i, bound) in bounds.enumerated() where value <= bound { buckets[i] += 1 }
            sum += value
            count += 1
        }
    }

    package enum Kind: String, Sendable { case gauge, counter }

    /// One family's samples, read at scrape time.
    package struct Family: Sendable {
        package var help: String
        package var kind: Kind
        package var read: @Sendable () -> [(labels: String, value: Double)]
    }

    package init() {}

    /// Seconds; from a fast cached read to a long-poll.
    package static let bucketBounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    /// Seconds of one re-plan (a device or the fleet).
    package static let replanBounds: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    private let requests = Mutex<[RouteKey: Int]>([:])
    private let durations = Mutex<[DurationKey: Histogram]>([:])
    private let families = Mutex<[String: Family]>([:])
    private let leases = Atomic<Int>(0)
    private let results = Mutex<[String: Int]>([:])
    private let replans = Mutex<[String: Histogram]>([:])

    /// One re-plan's duration: `device` (one device, e.g. after its context changed) or `fleet` (many at once).
    package func observeReplan(scope: String, seconds: Double) {
        replans.withLock { table in
            var h = table[scope] ?? Histogram(bounds: Self.replanBounds.count)
            h.observe(seconds, bounds: Self.replanBounds)
            table[scope] = h
        }
    }

    package func observe(method: String, route: String, status: Int, seconds: Double) {
        requests.withLock { $0[RouteKey(method: method, route: route, status: status), default: 0] += 1 }
        durations.withLock { table in
            let key = DurationKey(method: method, route: route)
            var h = table[key] ?? Histogram(bounds: Self.bucketBounds.count)
            h.observe(seconds, bounds: Self.bucketBounds)
            table[key] = h
        }
        if method == "POST" && route == "/v1/agent/jobs/{id}/result" {
            results.withLock { $0[status < 300 ? "accepted" : (status == 409 ? "conflict" : "refused"), default: 0] += 1 }
        }
    }

    /// A finished request as the server's access log sees it (long-polls included, which the registrar does not time).
    package func observeCompleted(method: String, route: String, status: Int) {
        if method == "GET" && route == "/v1/agent/jobs/next" && status == 200 { _ = leases.add(1, ordering: .relaxed) }
    }

    /// Registers a gauge read at scrape time (queue depth per state, devices per status, ...).
    package func gauge(_ name: String, help: String, read: @escaping @Sendable () -> [(labels: String, value: Double)]) {
        collect(name, help: help, kind: .gauge, read: read)
    }

    /// Registers a family read at scrape time.
    package func collect(_ name: String, help: String, kind: Kind, read: @escaping @Sendable () -> [(labels: String, value: Double)]) {
        families.withLock { $0[name] = Family(help: help, kind: kind, read: read) }
    }

    /// Text rendered after the coordinator's own families (the process's: memory, CPU, fds, build info).
    private let extra = Mutex<(@Sendable () -> String)?>(nil)
    package func append(_ render: @escaping @Sendable () -> String) { extra.withLock { $0 = render } }

    package func render() -> String {
        var out = "# HELP fleetadapt_http_requests_total HTTP requests by method, route pattern and status.\n"
        out += "# TYPE fleetadapt_http_requests_total counter\n"
        for (key, count) in requests.withLock({ $0 }).sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out += "fleetadapt_http_requests_total{method=\"\(key.method)\",route=\"\(Self.escape(key.route))\",status=\"\(key.status)\"} \(count)\n"
        }
        out += "# HELP fleetadapt_http_request_duration_seconds Time from request to response, by method and route pattern.\n"
        out += "# TYPE fleetadapt_http_request_duration_seconds histogram\n"
        for (key, h) in durations.withLock({ $0 }).sorted(by: { ($0.key.route, $0.key.method) < ($1.key.route, $1.key.method) }) {
            out += Self.histogramLines("fleetadapt_http_request_duration_seconds", labels: "method=\"\(key.method)\",route=\"\(Self.escape(key.route))\"",
                                       h, bounds: Self.bucketBounds)
        }
        out += "# HELP fleetadapt_job_leases_total Jobs leased to agents (long-polls answered with a job).\n"
        out += "# TYPE fleetadapt_job_leases_total counter\nfleetadapt_job_leases_total \(leases.load(ordering: .relaxed))\n"
        out += "# HELP fleetadapt_job_results_total Job results reported by agents, by outcome (accepted, conflict, refused).\n"
        out += "# TYPE fleetadapt_job_results_total counter\n"
        let counted = results.withLock { $0 }
        for outcome in ["accepted", "conflict", "refused"] {
            out += "fleetadapt_job_results_total{outcome=\"\(outcome)\"} \(counted[outcome] ?? 0)\n"
        }
        out += "# HELP fleetadapt_replan_duration_seconds Time of one re-plan, by scope (device: one device; fleet: many at once).\n"
        out += "# TYPE fleetadapt_replan_duration_seconds histogram\n"
        let replanned = replans.withLock { $0 }
        for scope in ["device", "fleet"] {
            out += Self.histogramLines("fleetadapt_replan_duration_seconds", labels: "scope=\"\(scope)\"",
                                       replanned[scope] ?? Histogram(bounds: Self.replanBounds.count), bounds: Self.replanBounds)
        }
        for (name, family) in families.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            out += "# HELP \(name) \(family.help)\n# TYPE \(name) \(family.kind.rawValue)\n"
            for sample in family.read() {
                out += sample.labels.isEmpty ? "\(name) \(sample.value)\n" : "\(name){\(sample.labels)} \(sample.value)\n"
            }
        }
        if let extra = extra.withLock({ $0 }) { out += extra() }
        return out
    }

    package static func histogramLines(_ name: String, labels: String, _ h: Histogram, bounds: [Double]) -> String {
        let prefix = labels.isEmpty ? "" : labels + ","
        var out = ""
        for (i, bound) in bounds.enumerated() {
            out += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(h.buckets[i])\n"
        }
        out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(h.count)\n"
        out += labels.isEmpty ? "\(name)_sum \(h.sum)\n\(name)_count \(h.count)\n" : "\(name)_sum{\(labels)} \(h.sum)\n\(name)_count{\(labels)} \(h.count)\n"
        return out
    }

    package static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
