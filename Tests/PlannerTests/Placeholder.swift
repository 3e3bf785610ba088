import Testing
@Test func PlannerTestsBuilds() { #expect(Bool(true)) }
