import Testing
@testable import HTTPServer

@Suite struct URIParsingTests {
    @Test func decodesEscapesAndPlusOnlyInQueries() {
        #expect(URIParsing.decode("a%20b+c", plusAsSpace: true) == "a b c")
        #expect(URIParsing.decode("a%20b+c", plusAsSpace: false) == "a b+c")
        #expect(URIParsing.decode("%e2%82%AC", plusAsSpace: false) == "€")
        #expect(URIParsing.decode("plain", plusAsSpace: true) == "plain")
    }

    @Test func rejectsMalformedEscapesAndInvalidUTF8() {
        for bad in ["%", "%2", "%zz", "abc%g0", "%C3"] {
            #expect(URIParsing.decode(bad[...], plusAsSpace: true) == nil, "\(bad)")
        }
        #expect(!URIParsing.hasValidEscapes("/a%2"))
        #expect(!URIParsing.hasValidEscapes("/a%x1/b"))
        #expect(URIParsing.hasValidEscapes("/a%20b/%41"))
    }

    @Test func queryLastValueWinsAndFlagsHaveEmptyValues() throws {
        let query = try #require(URIParsing.parseQuery("a=1&b=x%20y&a=2&flag&&c="))
        #expect(query == ["a": "2", "b": "x y", "flag": "", "c": ""])
        #expect(URIParsing.parseQuery("a=%zz") == nil)
    }

    @Test func splitsAtFirstQuestionMark() {
        let (path, query) = URIParsing.split("/x/y?a=1?b")
        #expect(path == "/x/y")
        #expect(query == "a=1?b")
        #expect(URIParsing.split("/only").query == nil)
    }
}
