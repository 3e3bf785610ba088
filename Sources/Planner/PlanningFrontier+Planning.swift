/// The public ways to ask a frontier for a device's plan.
///
/// A reference frontier serves every device without measured latencies; a device that sends measured latencies
/// gets a frontier built from them (a full DP, still exact, ~tens of µs for a 5×5 space).
extension PlanningFrontier {
    /// The frontier that is valid for this device's latency model.
    func resolved(for device: DeviceProfile) throws(PlanningError) -> PlanningFrontier? {
        if (device.measuredLatencyMs == nil) == usesReferenceLatencies { return nil }
        return try PlanningFrontier(space: space, device: device)
    }

    /// Exact plan with its explanation (binding budget, closest more accurate combination).
    public func plan(for device: DeviceProfile) throws(PlanningError) -> Plan {
        try plan(for: device, previousSplit: nil)
    }

    /// Exact plan with its explanation, searching the previous cut and its neighbours first (GADS) when the
    /// device had a split; the answer is the same as without the hint, only found sooner.
    public func plan(for device: DeviceProfile, previousSplit: Int?) throws(PlanningError) -> Plan {
        try device.validate(for: space)
        if let other = try resolved(for: device) { return try other.plan(for: device, previousSplit: previousSplit) }
        let ctx = context(device)
        return makePlan(decide(ctx, previousSplit: previousSplit, exhaustive: false, explain: true),
                        space: space, device: device, ctx: ctx)
    }

    /// Exact decision without explanation: the fast path for fleets (on-device lookup is two binary searches).
    public func summary(for device: DeviceProfile) throws(PlanningError) -> PlanSummary {
        try device.validate(for: space)
        if let other = try resolved(for: device) { return try other.summary(for: device) }
        return summary(of: decide(context(device), previousSplit: nil, exhaustive: false, explain: false))
    }

    /// GADS re-plan after a context change: searches the previous cut and its neighbours first, then widens only
    /// to cuts whose exact bound can still beat what was found. Returns the same plan as `plan(for:)`.
    public func replan(previous: Plan, newContext device: DeviceProfile) throws(PlanningError) -> Plan {
        try device.validate(for: space)
        if let other = try resolved(for: device) { return try other.replan(previous: previous, newContext: device) }
        let ctx = context(device)
        return makePlan(decide(ctx, previousSplit: previous.partition?.splitAfterBlock, exhaustive: false,
                               explain: true), space: space, device: device, ctx: ctx)
    }

    /// GADS re-plan without explanation; `previousSplit` nil means the previous plan ran on the device.
    public func replanSummary(previousSplit: Int?, newContext device: DeviceProfile) throws(PlanningError) -> PlanSummary {
        try device.validate(for: space)
        if let other = try resolved(for: device) {
            return try other.replanSummary(previousSplit: previousSplit, newContext: device)
        }
        return summary(of: decide(context(device), previousSplit: previousSplit, exhaustive: false, explain: false))
    }

    /// Evaluates every cut point, no bounds: the baseline that the neighbour-first search is compared with.
    public func exhaustiveSplitSummary(for device: DeviceProfile) throws(PlanningError) -> PlanSummary {
        try device.validate(for: space)
        if let other = try resolved(for: device) { return try other.exhaustiveSplitSummary(for: device) }
        return summary(of: decide(context(device), previousSplit: nil, exhaustive: true, explain: false))
    }
}
