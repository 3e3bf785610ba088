@testable import Coordinator
import Foundation
import Testing

/// Frontier caches are per model and may hold a frontier per measured device, so only the models planned
/// against recently keep theirs.
@Suite struct ReplannerCacheTests {
    @Test func cachesOfModelsNotUsedRecentlyAreDropped() async throws {
        let c = try TestCoordinator()
        let replanner = c.app.services.replanner
        var models: [UUID] = []
        for _ in 0..<6 { models.append(try #require(UUID(uuidString: try c.insertPlannableModel()))) }
        let first = try #require(try replanner.cache(model: models[0]))
        #expect(try replanner.cache(model: models[0]) === first)
        for m in models.dropFirst() { _ = try replanner.cache(model: m) }
        // Five other models since: the first one's cache was dropped and is rebuilt from the stored space.
        let rebuilt = try #require(try replanner.cache(model: models[0]))
        #expect(rebuilt !== first)
        #expect(rebuilt.reference.space == first.reference.space)
        // Recently used ones are kept.
        let recent = try #require(try replanner.cache(model: models[5]))
        #expect(try replanner.cache(model: models[5]) === recent)
        #expect(try replanner.cache(model: UUID()) == nil)
    }
}
