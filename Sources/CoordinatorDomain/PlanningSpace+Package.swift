import ElasticModel
import Planner

extension PlanningSpace {
    /// The planner's view of a package: per variant its reference profile and the estimator's drop, and how the
    /// summed drops read as accuracy, so that the planner ranks by the package's own estimate. What crosses the link when the
    /// network is cut before block 0 is the stem's output.
    package init(package m: PackageManifest) {
        func fixed(_ c: CostProfile) -> FixedCost {
            FixedCost(referenceLatencyMs: c.latencyMs, flops: c.flops, paramBytes: c.paramBytes, peakActivationBytes: c.peakActivationBytes)
        }
        self.init(
            blocks: m.blocks.enumerated().map { p, block in
                BlockOption(name: block.name, variants: block.variants.enumerated().map { v, variant in
                    let c = variant.profile ?? CostProfile(flops: 0, paramBytes: 0, peakActivationBytes: 0, outputBytes: 0, latencyMs: 0)
                    return VariantProfile(id: variant.id, referenceLatencyMs: c.latencyMs, flops: c.flops, paramBytes: c.paramBytes,
                                          peakActivationBytes: c.peakActivationBytes, outputBytes: c.outputBytes,
                                          accuracyDrop: m.accuracy.plannerDrop(position: p, variant: v))
                })
            },
            baseAccuracy: m.accuracy.baseAccuracy, referenceGFLOPS: m.reference.gflops,
            stem: fixed(m.stem), head: fixed(m.head), inputBytes: m.stem.outputBytes, accuracyLink: m.accuracy.plannerLink)
    }
}
