import Testing
@Test func ElasticModelTestsBuilds() { #expect(Bool(true)) }
