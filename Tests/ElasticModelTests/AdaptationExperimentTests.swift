import ElasticModel
import Foundation
import Learning
import Testing

/// The EdgeScaler experiment behind `fleetadapt bench adapt`, run for real at a small size on the fixture package.
struct AdaptationExperimentTests {
    static var small: AdaptationExperiment.Configuration {
        var c = AdaptationExperiment.Configuration()
        c.corruption = .contrast
        c.severity = 3
        c.images = 64
        c.combinations = 2
        c.devices = 2
        c.steps = 3
        c.batchSize = 16
        c.seed = 4
        return c
    }

    @Test func resultsAreConsistentWithTheConfigurationAndWithEachOther() throws {
        let package = Fixture.built.package
        var seen: [String] = []
        let result = try AdaptationExperiment(package: package, configuration: Self.small).run { event in
            switch event {
            case .sharedTrained(let seconds): seen.append("shared \(seconds > 0)")
            case .combination(let row): seen.append(row.ids)
            }
        }
        // The full combination first, then distinct random ones; each reported as it was measured, after the shared training.
        #expect(result.combinations.count == 3)
        #expect(result.combinations[0].choice == [Int](repeating: 0, count: package.manifest.blocks.count))
        #expect(Set(result.combinations.map(\.choice)).count == 3)
        #expect(seen == ["shared true"] + result.combinations.map(\.ids))
        for row in result.combinations {
            #expect(row.ids == zip(package.manifest.blocks, row.choice).map { $0.variants[$1].id }.joined(separator: "/"))
            for a in [row.none, row.statisticsOnly, row.shared, row.own, row.fullFineTuning] {
                #expect((0...1).contains(a))
                // 64 measurement images: every accuracy is a whole number of them.
                #expect(abs(a * 64 - (a * 64).rounded()) < 1e-9)
            }
        }
        let m = result.means
        #expect(abs(m.shared - result.combinations.map(\.shared).reduce(0, +) / 3) < 1e-12)
        #expect(result.sharedSeconds > 0 && result.recalibrationSeconds > 0 && result.ownSeconds > 0 && result.fullSeconds > 0)
        #expect(abs(result.timeReduction - (1 - (result.sharedSeconds + result.recalibrationSeconds) / result.fullSeconds)) < 1e-12)
        #expect(result.timeReduction < 1)
        // Devices: the first runs the full combination; each holds images / devices of the adaptation images.
        #expect(result.imagesPerDevice == 32)
        #expect(result.devices.count == 2)
        #expect(result.devices[0].choice == result.combinations[0].choice)
        #expect(result.devices[0].none == result.combinations[0].none, "the same combination unadapted on the same images")
        let d = try #require(result.deviceMeans)
        #expect(abs(d.aggregated - result.devices.map(\.aggregated).reduce(0, +) / 2) < 1e-12)
    }

    @Test func aConfigurationItCannotRunIsRefusedBeforeItStarts() throws {
        var c = Self.small
        c.loss = .bnStats
        #expect(throws: AdaptationExperiment.ConfigurationError.self) { try AdaptationExperiment(package: Fixture.built.package, configuration: c) }
        c = Self.small
        c.devices = 5   // 64 / 5 = 12 images each, fewer than a batch of 16
        #expect(c.problem == "each device needs at least batch-size images")
        c = Self.small
        c.images = 10
        #expect(c.problem != nil)
        #expect(Self.small.problem == nil)
    }
}
