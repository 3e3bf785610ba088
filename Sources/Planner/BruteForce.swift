/// Exhaustive reference: every variant combination × every cut, costed with the same formulas as the DP.
///
/// Exponential (Π variants × (blocks + 1)); exists to prove the DP, frontier and neighbour search exact in tests
/// and to measure their speed-up.
enum BruteForce {
    static func decide(space: PlanningSpace, device: DeviceProfile, explain: Bool) -> Decision {
        let reference = device.measuredLatencyMs == nil
        let ctx = DeviceContext(device: device, space: space, deviceUnitsAreReference: reference)
        let n = space.blocks.count
        let radices = space.blocks.map(\.variants.count)
        let scale = space.referenceGFLOPS / device.gflops
        let devLat = device.measuredLatencyMs ?? space.blocks.map { $0.variants.map(\.referenceLatencyMs) }
        let stemLat = latencyUnits(reference ? space.stem.referenceLatencyMs : space.stem.referenceLatencyMs * scale)
        let headLat = latencyUnits(reference ? space.head.referenceLatencyMs : space.head.referenceLatencyMs * scale)
        var weights = [UInt64](repeating: 1, count: n)
        for i in stride(from: n - 2, through: 0, by: -1) { weights[i] = weights[i + 1] * UInt64(radices[i + 1]) }

        var all: [Candidate] = []
        var v = [Int](repeating: 0, count: n)
        while true {
            var lat = stemLat, params = space.stem.paramBytes, act = space.stem.peakActivationBytes
            var drop: Int64 = 0, code: UInt64 = 0
            var prefixes = [PrefixPoint(lat: lat, mem: params + act, drop: 0, bytes: space.inputBytes, code: 0)]
            for i in 0..<n {
                let variant = space.blocks[i].variants[v[i]]
                lat = lat + latencyUnits(devLat[i][v[i]])
                params += variant.paramBytes
                act = max(act, variant.peakActivationBytes)
                drop += dropUnits(variant.accuracyDrop)
                code += UInt64(v[i]) * weights[i]
                prefixes.append(PrefixPoint(lat: lat, mem: params + act, drop: drop, bytes: variant.outputBytes,
                                            code: code))
            }
            let whole = ChainPoint(lat: lat + headLat, mem: (params + space.head.paramBytes)
                                   + max(act, space.head.peakActivationBytes), drop: drop, code: code)
            all.append(makeOnDeviceCandidate(whole, ctx))
            if let link = ctx.link {
                // Server suffix after a cut after block k: blocks k+1..n−1 then the head, summed from the head back.
                var sLat = latencyUnits(space.head.referenceLatencyMs), sDrop: Int64 = 0, sCode: UInt64 = 0
                for k in stride(from: n - 2, through: -1, by: -1) {
                    let i = k + 1
                    let variant = space.blocks[i].variants[v[i]]
                    sLat = latencyUnits(variant.referenceLatencyMs) + sLat
                    sDrop += dropUnits(variant.accuracyDrop)
                    sCode += UInt64(v[i]) * weights[i]
                    all.append(makePartitionCandidate(prefixes[k + 1], StairPoint(lat: sLat, drop: sDrop, code: sCode),
                                                      split: k, ctx, link))
                }
            }
            var i = n - 1
            while i >= 0 {
                v[i] += 1
                if v[i] < radices[i] { break }
                v[i] = 0
                i -= 1
            }
            if i < 0 { break }
        }

        var decision = Decision()
        for c in all where c.isFeasible(ctx) {
            if decision.best == nil || c.precedes(decision.best!, ctx.objective) { decision.best = c }
        }
        if let best = decision.best {
            if explain {
                for c in all where c.drop < best.drop {
                    let item = (c, c.violation(ctx))
                    if closer(item, than: decision.moreAccurate, ctx.objective) { decision.moreAccurate = item }
                }
            }
        } else {
            for c in all {
                let item = (c, c.violation(ctx))
                if closer(item, than: decision.closest, ctx.objective) { decision.closest = item }
            }
        }
        return decision
    }
}
