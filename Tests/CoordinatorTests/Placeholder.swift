import Testing
@Test func CoordinatorTestsBuilds() { #expect(Bool(true)) }
