import CommandSupport
import CoordinatorHTTP
import CoordinatorStore
import Foundation
import HTTPServer
import PostgresClient

extension CoordinatorApp {
    /// The families `/metrics` reads at scrape time: the fleet's state from the database (one cheap GROUP BY
    /// each), the waiting long-polls, the database pool, the server's in-flight requests and the process's own.
    static func registerMetrics(services: CoordinatorServices, server: HTTPServer) {
        let metrics = services.metrics
        let stores = services.stores
        metrics.gauge("fleetadapt_jobs", help: "Jobs by state.") {
            (try? stores.jobs.countsByState()).map { Self.labelled("state", $0) } ?? []
        }
        metrics.gauge("fleetadapt_campaigns", help: "Campaigns by status.") {
            (try? stores.campaigns.countsByStatus()).map { Self.labelled("status", $0) } ?? []
        }
        let releases = ReleaseStore(pool: stores.pool)
        metrics.gauge("fleetadapt_releases", help: "Model releases by status (their campaign's).") {
            (try? releases.countsByStatus()).map { Self.labelled("status", $0) } ?? []
        }
        metrics.gauge("fleetadapt_devices", help: "Devices by status.") {
            (try? stores.devices.counts().byStatus).map { Self.labelled("status", $0) } ?? []
        }
        metrics.gauge("fleetadapt_adapter_aggregations", help: "Aggregated domain adapter versions written (one per aggregation), fleet-wide.") {
            (try? stores.metrics.adapterAggregations()).map { [("", Double($0))] } ?? []
        }
        metrics.gauge("fleetadapt_devices_by_drift_state", help: "Active devices by drift state (ok, drifting; unknown: no drift report yet).") {
            (try? stores.drift.countsByState()).map { Self.labelled("drift_state", $0) } ?? []
        }
        metrics.gauge("fleetadapt_trigger_firings", help: "Domains created by drift triggers, fleet-wide.") {
            (try? stores.triggers.firingCount()).map { [("", Double($0))] } ?? []
        }
        let waiters = services.waiters
        metrics.gauge("fleetadapt_long_polls_waiting", help: "Agents waiting in GET /v1/agent/jobs/next on this replica.") {
            [("", Double(waiters.count))]
        }
        let pool = stores.pool
        metrics.gauge("fleetadapt_db_pool_connections_in_use", help: "Database connections checked out now.") {
            [("", Double(pool.statistics.inUse))]
        }
        metrics.gauge("fleetadapt_db_pool_connections_open", help: "Database connections open (idle or in use).") {
            [("", Double(pool.statistics.open))]
        }
        metrics.gauge("fleetadapt_db_pool_connections_max", help: "Size of the database connection pool.") {
            [("", Double(pool.statistics.max))]
        }
        metrics.collect("fleetadapt_db_pool_waits_total", help: "Checkouts that waited for a free database connection.", kind: .counter) {
            [("", Double(pool.statistics.waitsTotal))]
        }
        metrics.collect("fleetadapt_db_pool_errors_total", help: "Checkouts that failed: no connection free in time, or none could be opened.", kind: .counter) {
            [("", Double(pool.statistics.errorsTotal))]
        }
        metrics.gauge("fleetadapt_http_requests_in_flight", help: "Requests begun and not yet completed, parked long-polls included.") {
            [("", Double(server.inFlightRequests))]
        }
        metrics.append { ProcessMetrics.render() }
    }

    static func labelled(_ name: String, _ counts: [String: Int]) -> [(labels: String, value: Double)] {
        counts.sorted { $0.key < $1.key }.map { ("\(name)=\"\(Metrics.escape($0.key))\"", Double($0.value)) }
    }
}
