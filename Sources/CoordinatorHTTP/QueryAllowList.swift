import BundledResources
import HTTPServer

/// The query parameters each operation of the OpenAPI document declares, which is the allow-list every route
/// checks: a misspelt or unsupported parameter (`?limt=10`, `?label=site=berlin`) is a 400 naming it rather than
/// silently ignored (a filter that is ignored answers with more than was asked for). Read from the compiled-in
/// document, so the contract and the server cannot disagree about which parameters exist.
package struct QueryAllowList: Sendable {
    /// "METHOD /pattern" → the names of its query parameters (its own and its path's, `$ref`s resolved).
    package let operations: [String: Set<String>]

    package static let bundled = QueryAllowList(document: BundledResources.openAPIDocument)

    /// Reads the document by its layout (two-space indents, as openapi.yaml is written and
    /// TestSupport.OpenAPIOperations reads it): `paths:` with path keys at 2, methods at 4, and parameters as
    /// `- name:` … `in: query` or `- $ref: "#/components/parameters/X"`, whose `X` is under `components:`.
    package init(document: String) {
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false)
        // components.parameters: key → (name, in)
        var components: [String: (name: String, location: String)] = [:]
        var inComponentParameters = false
        var key: String?
        for line in lines {
            if line == "  parameters:" { inComponentParameters = true; continue }
            guard inComponentParameters else { continue }
            if line.hasPrefix("  "), !line.hasPrefix("   ") { break }
            if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                key = String(line.dropFirst(4).dropLast())
                if let key { components[key] = ("", "") }
            } else if let key, let value = Self.value(line, "      name:") {
                components[key]?.name = value
            } else if let key, let value = Self.value(line, "      in:") {
                components[key]?.location = value
            }
        }
        var operations: [String: Set<String>] = [:]
        var inPaths = false
        var pathParameters: Set<String> = []
        var path: String?
        var operation: String?
        var pendingName: String?
        for line in lines {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, let first = line.first, first != " " { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
                operation = nil
                pathParameters = []
                continue
            }
            if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":"), let path {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                operation = ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) ? "\(method) \(path)" : nil
                if let operation { operations[operation] = pathParameters }
                continue
            }
            let trimmed = line.drop { $0 == " " }
            var found: String?
            if trimmed.hasPrefix("- $ref: \"#/components/parameters/") {
                let name = trimmed.dropFirst("- $ref: \"#/components/parameters/".count).prefix { $0 != "\"" }
                if let c = components[String(name)], c.location == "query" { found = c.name }
            } else if trimmed.hasPrefix("- name: ") {
                pendingName = String(trimmed.dropFirst("- name: ".count)).trimmingCharacters(in: .whitespaces)
            } else if trimmed.hasPrefix("in: query"), let name = pendingName {
                found = name
                pendingName = nil
            } else if trimmed.hasPrefix("in: ") {
                pendingName = nil
            }
            if let found {
                if let operation { operations[operation]?.insert(found) } else { pathParameters.insert(found) }
            }
        }
        self.operations = operations
    }

    private static func value(_ line: Substring, _ prefix: String) -> String? {
        guard line.hasPrefix(prefix) else { return nil }
        return line.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
    }

    /// The allow-list of one operation; nil when the document does not describe it (ContractTests keeps every
    /// route in the document).
    package func parameters(_ method: HTTPMethod, _ pattern: String) -> Set<String>? {
        operations["\(method.rawValue) \(pattern)"]
    }

    /// A 400 `unknown_query_parameter` naming every query parameter of `request` that `allowed` does not hold.
    package static func check(_ request: HTTPRequest, allowed: Set<String>) throws {
        let unknown = request.query.keys.filter { !allowed.contains($0) }.sorted()
        guard !unknown.isEmpty else { return }
        let takes = allowed.isEmpty ? "takes no query parameters" : "takes only \(allowed.sorted().joined(separator: ", "))"
        throw HTTPError.badRequest("Unknown query parameter\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")): this operation \(takes).",
                                   code: "unknown_query_parameter",
                                   errors: unknown.map { FieldError(field: $0, message: "is not a query parameter of this operation") })
    }
}
