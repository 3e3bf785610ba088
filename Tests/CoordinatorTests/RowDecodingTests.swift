@testable import Coordinator
import CoordinatorStore
import FleetAPI
import Foundation
import PostgresClient
import Testing

/// Enum columns decode strictly: a value outside the enum is an error naming the column, never a default state.
@Suite struct RowDecodingTests {
    @Test func anEnumColumnOutsideItsValuesIsAnErrorNamingTheColumn() throws {
        let c = try TestCoordinator()
        let row = try c.sql("SELECT 'running' AS status, 'bogus' AS state").rows[0]
        #expect(try row.decodeEnum("status", as: CampaignStatus.self) == .running)
        do {
            _ = try row.decodeEnum("state", as: JobState.self)
            Issue.record("'bogus' decoded as a JobState")
        } catch let error as PostgresError {
            #expect(error.kind == .decode)
            #expect("\(error)".contains("'state'"), "\(error)")
            #expect("\(error)".contains("bogus"), "\(error)")
        }
    }
}
