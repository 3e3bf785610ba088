import PostgresClient

extension MetricsStore {
    /// Aggregations written so far: every fold of devices' adapters into a domain's adapter writes a new version.
    package func adapterAggregations() throws -> Int {
        try pool.query("SELECT count(*)::bigint AS n FROM domain_adapters").rows.first?.decode("n", as: Int.self) ?? 0
    }
}
