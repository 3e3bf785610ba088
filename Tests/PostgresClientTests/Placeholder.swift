import Testing
@Test func PostgresClientTestsBuilds() { #expect(Bool(true)) }
