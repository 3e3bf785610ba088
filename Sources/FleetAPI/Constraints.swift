/// The budgets a device's configuration must respect; the planner treats each as a hard limit.
public struct Constraints: Codable, Sendable, Equatable {
    public var latencyBudgetMs: Double
    public var memoryBudgetMB: Double
    public var energyBudgetMJ: Double?

    public init(latencyBudgetMs: Double, memoryBudgetMB: Double, energyBudgetMJ: Double? = nil) {
        self.latencyBudgetMs = latencyBudgetMs
        self.memoryBudgetMB = memoryBudgetMB
        self.energyBudgetMJ = energyBudgetMJ
    }

    enum CodingKeys: String, CodingKey {
        case latencyBudgetMs = "latency_budget_ms"
        case memoryBudgetMB = "memory_budget_mb"
        case energyBudgetMJ = "energy_budget_mj"
    }

    public func validate(into v: inout Validator, prefix: String = "constraints") {
        v.number(latencyBudgetMs, "\(prefix).latency_budget_ms", min: 0, max: 3_600_000, minExclusive: true)
        v.number(memoryBudgetMB, "\(prefix).memory_budget_mb", min: 0, max: Double(Hardware.maxMemoryMB), minExclusive: true)
        v.number(energyBudgetMJ, "\(prefix).energy_budget_mj", min: 0, max: 1e9, minExclusive: true, required: false)
    }
}
