import Foundation
@testable import ElasticModel
import Learning
import Planner
import Testing

/// The package's estimator against brute force: the fixture package's network is run on its validation images for
/// random combinations no fit saw, and the estimates are compared with those measurements.
struct AccuracyEstimatorTests {
    /// Refits the fixture's estimator with enough calibration combinations for the non-additive models, then
    /// measures 40 other random combinations by running the network. The chosen model must beat the additive drops
    /// fitted on the same measurements (mean and max), stay within a loose bound, and never leave [0, 1].
    @Test func chosenEstimatorBeatsAdditiveOnMeasuredHeldOutCombinations() throws {
        let net = try Fixture.built.package.network()
        let images = Fixture.built.validation
        let latencies = Fixture.built.package.manifest.blocks.map { $0.variants.map { $0.profile!.latencyMs } }
        let estimate = AccuracyEstimator.fit(net, images: images, calibrationCount: 60, validationCount: 20, frontierCount: 6,
                                             latencies: latencies, seed: 21)
        let counts = net.variantBlocks.map(\.count)
        let ids = { (c: [Int]) in c.enumerated().map { net.positions[$0.offset].variants[$0.element].id } }
        let fitted = Set((estimate.calibration + estimate.validation).map(\.variants))
        var rng = SeededRandom(seed: 977)
        var heldOut: [[Int]] = []
        var seen = Set<[Int]>()
        for _ in 0..<10_000 where heldOut.count < 40 {
            let c = counts.map { Int(rng.next() % UInt64($0)) }
            if c.filter({ $0 != 0 }).count >= 2, !fitted.contains(ids(c)), seen.insert(c).inserted { heldOut.append(c) }
        }
        #expect(heldOut.count == 40)
        var modelErrors: [Double] = [], additiveErrors: [Double] = []
        for c in heldOut {
            net.compose(c)
            let measured = Trainer.accuracy(net.model, images)
            modelErrors.append(abs(measured - estimate.predicted(c)))
            additiveErrors.append(abs(measured - min(1, max(0, estimate.additive(c)))))
        }
        let mean = { (e: [Double]) in e.reduce(0, +) / Double(e.count) }
        let report = "chosen \(estimate.estimatorName): mean \(mean(modelErrors)) max \(modelErrors.max()!); additive: mean \(mean(additiveErrors)) max \(additiveErrors.max()!); candidates \(estimate.candidates ?? [])"
        print(report)
        #expect(estimate.model != nil, "\(report)")
        #expect(mean(modelErrors) < mean(additiveErrors), "\(report)")
        #expect(modelErrors.max()! < additiveErrors.max()!, "\(report)")
        #expect(mean(modelErrors) <= 0.04 && modelErrors.max()! <= 0.15, "\(report)")
        // Never outside [0, 1], over the whole space; the measured frontier is returned as measured.
        var c = [Int](repeating: 0, count: counts.count)
        let all = estimate.estimator()
        for _ in 0..<counts.reduce(1, *) {
            let a = all(c), p = estimate.predicted(c)
            #expect((0...1).contains(a) && (0...1).contains(p))
            for q in stride(from: counts.count - 1, through: 0, by: -1) {
                c[q] += 1
                if c[q] < counts[q] { break }
                c[q] = 0
            }
        }
        let frontier = try #require(estimate.frontier)
        #expect(!frontier.isEmpty && frontier.count <= 6)
        for m in frontier {
            #expect(estimate.estimate(m.choice) == m.measured && all(m.choice) == m.measured)
            net.compose(m.choice)
            #expect(Trainer.accuracy(net.model, images) == m.measured)
        }
        // The reported held-out figures are those of the validation points it stores.
        let stored = estimate.validation.map { abs($0.measured - $0.estimated) }
        #expect(abs(estimate.meanAbsError - mean(stored)) < 1e-12)
    }

    /// With the model in the manifest the package round-trips; hostile model fields are refused naming the field;
    /// a manifest without them (older packages) loads and falls back to the additive drops, clamped.
    @Test func modelFieldsAreValidatedAndOptional() throws {
        var package = Fixture.built.package
        let counts = package.manifest.blocks.map(\.variants.count)
        let model = AccuracyModel(kind: .logistic, floor: 0.1, bias: 2, unary: counts.map { [Double](repeating: -0.5, count: $0) },
                                  pairs: (0..<(counts.count - 1)).map { p in [[Double]](repeating: [Double](repeating: -0.1, count: counts[p + 1]), count: counts[p]) },
                                  ridge: 1)
        package.manifest.accuracy.model = model
        package.manifest.accuracy.frontier = [.init(choice: [Int](repeating: 1, count: counts.count), measured: 0.5, estimated: 0.4)]
        let decoded = try ElasticPackage.decode(try package.encode())
        #expect(decoded.manifest.accuracy.model == model)
        #expect(decoded.manifest.accuracy.estimate([Int](repeating: 1, count: counts.count)) == 0.5)

        var badShape = package
        badShape.manifest.accuracy.model?.pairs[1] = [[0]]
        #expect(throws: PackageError.invalidManifest(field: "accuracy.model.pairs[1]", message: "one term per variant of block 1 × variant of block 2")) {
            try ElasticPackage.decode(try badShape.encode())
        }
        var huge = package
        huge.manifest.accuracy.model?.unary[0][1] = 1e300
        #expect(throws: PackageError.invalidManifest(field: "accuracy.model.unary[0][1]", message: "must be a finite number in -1000.0...1000.0")) {
            try ElasticPackage.decode(try huge.encode())
        }
        var index = package
        index.manifest.accuracy.frontier?[0].choice[0] = 99
        #expect(throws: PackageError.invalidManifest(field: "accuracy.frontier[0].choice", message: "one variant index per block, each in range")) {
            try ElasticPackage.decode(try index.encode())
        }
        var floor = package
        floor.manifest.accuracy.model?.floor = -1
        #expect((try? ElasticPackage.decode(try floor.encode())) == nil)

        // An older manifest: no model, candidates or frontier keys at all.
        let old = Fixture.built.package
        let entries = try TarArchive.read(try old.encode())
        let json = try #require(try JSONSerialization.jsonObject(with: Data(entries[1].bytes)) as? [String: Any])
        var accuracy = try #require(json["accuracy"] as? [String: Any])
        for key in ["model", "candidates", "frontier"] { accuracy.removeValue(forKey: key) }
        var stripped = json
        stripped["accuracy"] = accuracy
        let bytes = try JSONSerialization.data(withJSONObject: stripped, options: [.sortedKeys])
        let loaded = try ElasticPackage.decode(ElasticPackage.archive(manifest: Array(bytes), weights: entries[2].bytes))
        let a = loaded.manifest.accuracy
        #expect(a.model == nil && a.frontier == nil && a.estimatorName == "additive")
        let worst = counts.map { $0 - 1 }
        #expect(a.estimate(worst) == min(1, max(0, a.baseAccuracy - worst.enumerated().reduce(0) { $0 + a.fitted[$1.offset][$1.element] })))
    }

    /// The fits themselves on synthetic measurements: the logistic model recovers a generating logistic-pairwise
    /// truth, and the linear ridge solve matches its normal equations.
    @Test func logisticFitRecoversAGeneratingModel() {
        let counts = [3, 3, 3, 3]
        let f = AccuracyModelFit.Features(counts: counts)
        var rng = SeededRandom(seed: 5)
        let truth = (0..<f.size).map { $0 == 0 ? 2.0 : Double(rng.uniform(-1.2, 0.1)) }
        let truthModel = f.model(.logistic, truth, floor: 0.1, ridge: 0)
        var rows: [([Int], Double)] = []
        for _ in 0..<200 {
            let c = counts.map { Int(rng.next() % UInt64($0)) }
            rows.append((c, truthModel.predict(c)))
        }
        let singles = counts.enumerated().map { p, n in (0..<n).map { v in
            var c = [Int](repeating: 0, count: counts.count); c[p] = v; return truthModel.predict(c) } }
        let fit = AccuracyModelFit.fit(.logistic, counts: counts, rows: rows, base: truthModel.predict([0, 0, 0, 0]), singles: singles,
                                       floor: 0.1, ridge: 1e-8)
        var worst = 0.0
        for r in rows { worst = max(worst, abs(fit.predict(r.0) - r.1)) }
        #expect(worst < 1e-4, "max error \(worst)")
        let linear = AccuracyModelFit.fit(.pairwise, counts: counts, rows: rows, base: rows[0].1, singles: singles, floor: 0.1, ridge: 1e-3)
        #expect(linear.floor == 0 && linear.pairs.count == 3)
    }

    /// From measurements alone (no network): a logistic-additive truth is recognised and chosen by cross-validation
    /// (the pair models are fitted and reported, not chosen: the planner could not search them exactly); a space
    /// whose pair models would need more than `maxModelUnknowns` unknowns fits only the models without pairs.
    @Test func fitFromMeasurementsChoosesByCrossValidationAndBoundsItsSystems() {
        let counts = [4, 4, 4, 4]
        let f = AccuracyModelFit.Features(counts: counts, pairs: false)
        var rng = SeededRandom(seed: 12)
        let truth = f.model(.logisticAdditive, (0..<f.size).map { $0 == 0 ? 2.2 : Double(rng.uniform(-1.5, 0)) }, floor: 0.1, ridge: 0)
        let small = AccuracyEstimator.fit(counts: counts, classes: 10, calibrationCount: 40, validationCount: 20, frontierCount: 0,
                                          latencies: nil, seed: 1, progress: { _, _ in }, measure: truth.predict,
                                          ids: { $0.map(String.init) })
        let additive = small.candidates?.first { $0.name == "additive" }
        #expect(small.estimatorName == "logistic-additive", "\(small.candidates ?? [])")
        #expect(small.candidates?.map(\.name) == ["additive", "pairwise", "logistic", "logistic-additive"])
        #expect(small.meanAbsError < 0.5 * (additive?.meanAbsError ?? 0) && small.maxAbsError < (additive?.maxAbsError ?? 0),
                "\(small.candidates ?? [])")
        let wide = [Int](repeating: 16, count: 20)
        #expect(AccuracyModelFit.Features(counts: wide).size > AccuracyEstimator.maxModelUnknowns)
        #expect(AccuracyModelFit.Features(counts: wide, pairs: false).size <= AccuracyEstimator.maxModelUnknowns)
        let large = AccuracyEstimator.fit(counts: wide, classes: 10, calibrationCount: 20, validationCount: 4, frontierCount: 0,
                                          latencies: nil, seed: 1, progress: { _, _ in },
                                          measure: { c in 0.9 - 0.01 * Double(c.filter { $0 != 0 }.count) }, ids: { $0.map(String.init) })
        #expect(large.candidates?.map(\.name) == ["additive", "logistic-additive"])
        #expect(large.model == nil || large.model?.kind == .logisticAdditive)
    }

    /// What the planner adds up and how it reads the sum give exactly the package's `predicted`, for every
    /// combination, whichever estimator was chosen: the planner ranks by the package's own estimate.
    @Test func plannerDropsAndLinkReproduceThePredictedAccuracy() {
        let counts = [4, 3, 4, 3]
        var rng = SeededRandom(seed: 3)
        let f = AccuracyModelFit.Features(counts: counts, pairs: false)
        let truth = f.model(.logisticAdditive, (0..<f.size).map { $0 == 0 ? 2.0 : Double(rng.uniform(-1.4, 0.05)) }, floor: 0.1, ridge: 0)
        let logistic = AccuracyEstimator.fit(counts: counts, classes: 10, calibrationCount: 40, validationCount: 10, frontierCount: 0,
                                             latencies: nil, seed: 2, progress: { _, _ in }, measure: truth.predict,
                                             ids: { $0.map(String.init) })
        let linear = AccuracyEstimator.fit(counts: counts, classes: 10, calibrationCount: 40, validationCount: 10, frontierCount: 0,
                                           latencies: nil, seed: 2, progress: { _, _ in },
                                           measure: { c in 0.9 - 0.02 * Double(c.reduce(0, +)) }, ids: { $0.map(String.init) })
        #expect(logistic.model?.kind == .logisticAdditive && logistic.plannerLink != nil)
        for estimate in [logistic, linear] { Self.expectPlannerReproduces(estimate, counts: counts) }
    }

    /// A logistic-additive model in a manifest may not carry pair terms (the planner would not see them).
    @Test func aLogisticAdditiveModelWithPairTermsIsRefused() throws {
        var package = Fixture.built.package
        let counts = package.manifest.blocks.map(\.variants.count)
        var model = AccuracyModel(kind: .logisticAdditive, floor: 0.1, bias: 2, unary: counts.map { [Double](repeating: -0.5, count: $0) },
                                  pairs: (0..<(counts.count - 1)).map { p in [[Double]](repeating: [Double](repeating: 0, count: counts[p + 1]), count: counts[p]) },
                                  ridge: 1)
        package.manifest.accuracy.model = model
        #expect(try ElasticPackage.decode(try package.encode()).manifest.accuracy.model == model)
        model.pairs[0][1][1] = -0.2
        package.manifest.accuracy.model = model
        #expect(throws: PackageError.invalidManifest(field: "accuracy.model.pairs[0][1][1]", message: "must be 0: a logistic-additive model has no pair terms")) {
            try ElasticPackage.decode(try package.encode())
        }
    }

    /// A link that saturates below 1: measurements generated by floor 0.1, ceiling 0.8 (a model whose combinations
    /// never beat the original by much) are fitted back to within 1e-4 at that ceiling; cross-validation picks a
    /// ceiling below 1 from the measurements alone, with a lower held-out error than the best fit at ceiling 1; and
    /// the planner's terms and link reproduce its estimates.
    @Test func aCeilingBelowOneIsFittedAndChosenByCrossValidation() throws {
        let counts = [3, 3, 3, 3, 3]
        let f = AccuracyModelFit.Features(counts: counts, pairs: false)
        var rng = SeededRandom(seed: 21)
        let truth = f.model(.logisticAdditive, (0..<f.size).map { $0 == 0 ? 3.5 : Double(rng.uniform(-1.8, 0)) }, floor: 0.1, ceiling: 0.8, ridge: 0)
        var rows: [([Int], Double)] = []
        for _ in 0..<150 {
            let c = counts.map { Int(rng.next() % UInt64($0)) }
            rows.append((c, truth.predict(c)))
        }
        let singles = counts.enumerated().map { p, n in (0..<n).map { v in
            var c = [Int](repeating: 0, count: counts.count); c[p] = v; return truth.predict(c) } }
        let base = truth.predict([Int](repeating: 0, count: counts.count))
        let exact = AccuracyModelFit.fit(.logisticAdditive, counts: counts, rows: rows, base: base, singles: singles, floor: 0.1, ceiling: 0.8, ridge: 1e-8)
        #expect(rows.map { abs(exact.predict($0.0) - $0.1) }.max()! < 1e-4)
        #expect(exact.ceiling == 0.8 && exact.floor == 0.1)

        let chosen = AccuracyEstimator.fit(counts: counts, classes: 10, calibrationCount: 80, validationCount: 40, frontierCount: 0,
                                           latencies: nil, seed: 4, progress: { _, _ in }, measure: truth.predict, ids: { $0.map(String.init) })
        let model = try #require(chosen.model)
        #expect(model.kind == .logisticAdditive && model.ceiling < 1, "\(model.floor) … \(model.ceiling)")
        #expect(AccuracyEstimator.ceilingGrid(base: base).contains(model.ceiling))
        // The same measurements fitted at ceiling 1 (what the estimator did before it had a ceiling) do worse.
        let validation = chosen.validation.map { p in (p.variants.map { Int($0)! }, p.measured) }
        let atOne = AccuracyModelFit.fit(.logisticAdditive, counts: counts, rows: chosen.calibration.map { p in (p.variants.map { Int($0)! }, p.measured) },
                                         base: base, singles: singles, floor: model.floor, ceiling: 1, ridge: model.ridge)
        let errorAtOne = validation.map { abs(atOne.predict($0.0) - $0.1) }.reduce(0, +) / Double(validation.count)
        #expect(chosen.meanAbsError < errorAtOne, "\(chosen.meanAbsError) against \(errorAtOne) at ceiling 1")
        #expect(chosen.plannerLink?.ceiling == model.ceiling)
        Self.expectPlannerReproduces(chosen, counts: counts)
    }

    /// For every combination, what the planner adds up (`plannerDrop`) read through its link (or base − Σ) is the
    /// package's `predicted` estimate.
    static func expectPlannerReproduces(_ estimate: AccuracyEstimate, counts: [Int]) {
        var c = [Int](repeating: 0, count: counts.count)
        for _ in 0..<counts.reduce(1, *) {
            let drop = c.enumerated().reduce(0.0) { $0 + estimate.plannerDrop(position: $1.offset, variant: $1.element) }
            let planned = estimate.plannerLink?.accuracy(drop: drop) ?? estimate.baseAccuracy - drop
            #expect(abs(min(1, max(0, planned)) - estimate.predicted(c)) < 1e-12, "\(c)")
            for q in stride(from: counts.count - 1, through: 0, by: -1) {
                c[q] += 1
                if c[q] < counts[q] { break }
                c[q] = 0
            }
        }
    }

    /// A manifest's ceiling must lie above its floor and at most 1; one written before ceilings existed reads as 1.
    @Test func theCeilingIsValidatedAndDefaultsToOne() throws {
        var package = Fixture.built.package
        let counts = package.manifest.blocks.map(\.variants.count)
        var model = AccuracyModel(kind: .logisticAdditive, floor: 0.1, ceiling: 0.85, bias: 2, unary: counts.map { [Double](repeating: -0.5, count: $0) },
                                  pairs: (0..<(counts.count - 1)).map { p in [[Double]](repeating: [Double](repeating: 0, count: counts[p + 1]), count: counts[p]) },
                                  ridge: 1)
        package.manifest.accuracy.model = model
        #expect(try ElasticPackage.decode(try package.encode()).manifest.accuracy.model == model)
        for (bad, field) in [(0.1, "accuracy.model.ceiling"), (1.2, "accuracy.model.ceiling")] {
            model.ceiling = bad
            package.manifest.accuracy.model = model
            #expect(throws: PackageError.self) { try ElasticPackage.decode(try package.encode()) }
            do { _ = try ElasticPackage.decode(try package.encode()) } catch let PackageError.invalidManifest(f, _) { #expect(f == field) } catch {
                Issue.record("\(error)")
            }
        }
        let json = #"{"kind": "logistic-additive", "floor": 0.1, "bias": 2, "unary": [[0]], "pairs": [], "ridge": 1}"#
        #expect(try JSONDecoder().decode(AccuracyModel.self, from: Data(json.utf8)).ceiling == 1)
        let link = #"{"floor": 0.1, "score": 2}"#
        #expect(try JSONDecoder().decode(AccuracyLink.self, from: Data(link.utf8)).ceiling == 1)
    }
}
