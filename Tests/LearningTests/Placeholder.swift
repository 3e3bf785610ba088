import Testing
@Test func LearningTestsBuilds() { #expect(Bool(true)) }
