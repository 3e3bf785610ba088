import ElasticModel
import Foundation

/// Tables the model commands print about a package.
enum PackageTables {
    static func printDetection(_ d: BlockDetection.Result) {
        print("Blocks detected on the dataflow graph (fixed: stem \(d.stem?.modules ?? []), head \(d.head?.modules ?? [])):")
        print(pad(["block", "nodes", "branch", "input", "output", "compressible layers"], [10, 6, 7, 12, 12, 0]))
        for b in d.blocks {
            print(pad([b.modules.joined(separator: "+"), "\(b.nodeCount)", b.hasBranch ? "yes" : "no", shape(b.inputShape), shape(b.outputShape),
                       b.compressibleLayers.joined(separator: ", ")], [10, 6, 7, 12, 12, 0]))
        }
        print("")
    }

    static func printVariants(_ m: PackageManifest, undistilled: [[Double]]?) {
        var header = ["block", "variant", "hidden", "MFLOPs", "params KB", "peak act KB", "out KB", "latency ms", "acc drop", "distil MSE"]
        var widths = [10, 8, 7, 8, 10, 12, 8, 11, 9, 18]
        if undistilled != nil { header.append("single-swap acc pruned→distilled"); widths.append(0) }
        print(pad(header, widths))
        for (p, b) in m.blocks.enumerated() {
            for (v, variant) in b.variants.enumerated() {
                let pr = variant.profile!
                var row = [b.name, variant.id, variant.hiddenChannels.map(String.init) ?? "-", String(format: "%.3f", pr.flops / 1e6),
                           String(format: "%.1f", Double(pr.paramBytes) / 1024), String(format: "%.1f", Double(pr.peakActivationBytes) / 1024),
                           String(format: "%.1f", Double(pr.outputBytes) / 1024), String(format: "%.4f", pr.latencyMs),
                           String(format: "%.4f", m.accuracy.scaledDrop(position: p, variant: v)),
                           variant.distillation.map { String(format: "%.4f→%.4f", $0.mseBefore, $0.mseAfter) } ?? "-"]
                if let u = undistilled {
                    let after = m.accuracy.baseAccuracy - m.accuracy.drops[p][v]
                    row.append(v == 0 ? String(format: "%.4f (original)", after) : String(format: "%.4f → %.4f", u[p][v], after))
                }
                print(pad(row, widths))
            }
        }
        print("")
    }

    static func printSummary(_ m: PackageManifest, bytes: [UInt8]) {
        let a = m.accuracy
        print("package \(m.name): format \(m.format) v\(m.formatVersion), \(bytes.count) bytes, built \(m.createdAt)")
        print("architecture: \(m.architecture.family.rawValue), input \(shape(m.architecture.inputShape)), \(m.architecture.classes) classes; adapter slots: \(m.adapter.kind) (zero-initialised)")
        print("combinations: \(m.combinationCount) (\(m.blocks.map { "\($0.variants.count)" }.joined(separator: " × ")))")
        print(String(format: "stem %.4f ms, head %.4f ms; full network %.4f ms at batch 1; reference %.3f GFLOPS (%d runs, median)",
                     m.stem.latencyMs, m.head.latencyMs, m.reference.fullNetworkLatencyMs, m.reference.gflops, m.reference.latencyRuns))
        print(String(format: "accuracy estimator: %@, base %.4f, fitted on %d single swaps + %d combinations; error on %d other random combinations: mean %.4f, max %.4f (%d test images)",
                     a.estimatorName as NSString, a.baseAccuracy, a.drops.reduce(0) { $0 + $1.count - 1 }, a.calibration.count, a.validation.count,
                     a.meanAbsError, a.maxAbsError, a.validationImages))
        if let model = a.model, model.kind.isLogistic {
            print(String(format: "  logistic link from %.4f to %.4f (chosen by cross-validation)", model.floor, model.ceiling))
        }
        let cmp = a.comparison { ids in ids.enumerated().map { p, id in m.blocks[p].variants.firstIndex { $0.id == id } ?? 0 } }
        print(String(format: "  same points, mean / max error: sum of single-swap drops %.4f / %.4f; × one fitted scale (LegoDNN) %.4f / %.4f; fitted drops %.4f / %.4f",
                     cmp.singleSwap.0, cmp.singleSwap.1, cmp.scaled.0, cmp.scaled.1, cmp.fitted.0, cmp.fitted.1))
        for c in a.candidates ?? [] {
            let cv = c.crossValidationError.map { String(format: "%.4f", $0) } ?? "-"
            print(String(format: "  estimator %@: cross-validated mean error %@ on the calibration combinations; held out mean %.4f, max %.4f%@",
                         c.name.padding(toLength: max(17, c.name.count), withPad: " ", startingAt: 0) as NSString, cv as NSString, c.meanAbsError, c.maxAbsError,
                         (c.name == a.estimatorName ? " (used)" : "") as NSString))
        }
        if let f = a.frontier, !f.isEmpty {
            let e = f.map { abs($0.measured - $0.estimated) }
            print(String(format: "  %d frontier combinations measured (the package answers with these): estimate error there mean %.4f, max %.4f",
                         f.count, e.reduce(0, +) / Double(e.count), e.max() ?? 0))
        }
        let p = m.provenance
        print("provenance: \(p.dataset) (\(p.sourceDomain)), base \(p.baseModel), distilled on \(p.distillationImages) images × \(p.distillationSteps) steps (\(p.distillationLoss))")
        for b in m.blobs { print("blob \(b.path): \(b.sizeBytes) bytes, sha256 \(b.sha256)") }
    }

    static func shape(_ s: [Int]) -> String { s.map(String.init).joined(separator: "×") }

    static func pad(_ cells: [String], _ widths: [Int]) -> String {
        zip(cells, widths).map { $1 == 0 ? $0 : $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0) }.joined()
    }
}
