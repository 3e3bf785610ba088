/// Turns a decision into a `Plan` a human can audit: the choice, its costs against each budget, and which budget
/// stands in the way of more accuracy (or, when nothing fits, which one the closest combination breaks and by how
/// much). Shared by the DP and the brute force, so their plans compare equal field by field.
func makePlan(_ d: Decision, space: PlanningSpace, device: DeviceProfile, ctx: DeviceContext) -> Plan {
    guard let c = d.best ?? d.closest?.0 else {
        return Plan(variants: [], variantIDs: [], partition: nil,
                    predicted: PlanPrediction(accuracy: .nan, latencyMs: .nan, memoryMB: .nan, energyMJ: .nan),
                    bindingConstraint: nil, feasible: false, reason: "The planning space has no combination.")
    }
    let variants = decodeCombination(c.code, radices: space.blocks.map(\.variants.count))
    let ids = variants.enumerated().map { space.blocks[$0.offset].variants[$0.element].id }
    let partition = c.isOnDevice ? nil : Partition(splitAfterBlock: c.split, deviceLatencyMs: c.deviceMs,
                                                   transferMs: c.transferMs, edgeLatencyMs: c.serverMs)
    let accuracy = space.accuracy(drop: Double(c.drop) / dropUnitsPerAccuracy)
    let predicted = PlanPrediction(accuracy: accuracy, latencyMs: c.latencyMs,
                                   memoryMB: Double(c.memBytes) / DeviceProfile.bytesPerMB, energyMJ: c.energyMJ)
    let choice = "\(ids.joined(separator: "·")) \(placement(c))"
    let usage = usageText(c, ctx: ctx, device: device)
    let drop = Double(c.drop) / dropUnitsPerAccuracy
    let accuracyText = space.accuracyLink == nil
        ? "estimated accuracy \(fixed(accuracy, 4)) (base \(fixed(space.baseAccuracy, 4)) − \(fixed(drop, 4)))"
        : "estimated accuracy \(fixed(accuracy, 4)) (logistic estimate, score \(fixed(space.accuracyLink!.score - drop, 4)))"

    if d.best != nil {
        var reason = "Most accurate combination within the budgets: \(choice), \(accuracyText); \(usage)."
        var binding: BudgetKind?
        if let (m, v) = d.moreAccurate {
            binding = v.kind
            let mIDs = decodeCombination(m.code, radices: space.blocks.map(\.variants.count)).enumerated()
                .map { space.blocks[$0.offset].variants[$0.element].id }.joined(separator: "·")
            let mAcc = space.accuracy(drop: Double(m.drop) / dropUnitsPerAccuracy)
            reason += " \(v.kind.rawValue.capitalizedFirst) binds: the closest more accurate combination "
                + "(\(mIDs) \(placement(m)), accuracy \(fixed(mAcc, 4))) needs \(valueText(m, v.kind)), "
                + "\(overrun(v.ratio(v.kind))) over the budget."
        } else {
            reason += " No combination in the space is more accurate; no budget binds."
        }
        return Plan(variants: variants, variantIDs: ids, partition: partition, predicted: predicted,
                    bindingConstraint: binding, feasible: true, reason: reason)
    }
    let v = d.closest!.1
    let reason = "No combination fits the budgets. Closest (smallest worst overrun): \(choice), \(accuracyText); "
        + "\(v.kind.rawValue) \(valueText(c, v.kind)) exceeds its budget \(budgetText(v.kind, ctx)) by "
        + "\(overrun(v.ratio(v.kind))); \(usage)."
    return Plan(variants: variants, variantIDs: ids, partition: partition, predicted: predicted,
                bindingConstraint: v.kind, feasible: false, reason: reason)
}

/// Variant index per block from a mixed-radix code (block 0 most significant).
func decodeCombination(_ code: UInt64, radices: [Int]) -> [Int] {
    var out = [Int](repeating: 0, count: radices.count)
    var rest = code
    for i in stride(from: radices.count - 1, through: 0, by: -1) {
        out[i] = Int(rest % UInt64(radices[i]))
        rest /= UInt64(radices[i])
    }
    return out
}

private func placement(_ c: Candidate) -> String {
    if c.isOnDevice { return "on the device" }
    let cut = c.split < 0 ? "after the stem" : "after block \(c.split)"
    return "cut \(cut) (device \(fixed(c.deviceMs, 2)) ms + link \(fixed(c.transferMs, 2)) ms + edge \(fixed(c.serverMs, 2)) ms)"
}

private func valueText(_ c: Candidate, _ kind: BudgetKind) -> String {
    switch kind {
    case .latency: "\(fixed(c.latencyMs, 2)) ms"
    case .memory: "\(fixed(Double(c.memBytes) / DeviceProfile.bytesPerMB, 2)) MB"
    case .energy: "\(fixed(c.energyMJ, 2)) mJ"
    }
}

private func budgetText(_ kind: BudgetKind, _ ctx: DeviceContext) -> String {
    switch kind {
    case .latency: "\(fixed(ctx.latencyBudget, 2)) ms"
    case .memory: "\(fixed(ctx.memoryBudgetBytes / DeviceProfile.bytesPerMB, 2)) MB"
    case .energy: "\(fixed(ctx.energyBudget, 2)) mJ"
    }
}

private func usageText(_ c: Candidate, ctx: DeviceContext, device: DeviceProfile) -> String {
    var s = "latency \(valueText(c, .latency)) of \(budgetText(.latency, ctx)), "
        + "memory \(valueText(c, .memory)) of \(budgetText(.memory, ctx)), energy \(valueText(c, .energy))"
    if ctx.energyBudget == .infinity {
        s += " (no budget)"
    } else {
        s += " of \(budgetText(.energy, ctx))"
        if let battery = device.batteryPct, battery < DeviceProfile.lowBatteryThresholdPct {
            s += " (battery \(fixed(battery, 0))% tightens the energy budget from \(fixed(device.energyBudgetMJ ?? 0, 2)) mJ)"
        }
    }
    return s
}

extension String {
    fileprivate var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
