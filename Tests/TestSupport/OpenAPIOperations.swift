import Foundation

/// The operations of an OpenAPI document as "METHOD /path" → its operationId (nil when it has none), read from
/// the YAML's layout (two-space indents, as our documents are written): what contract tests compare with a
/// server's route table.
public enum OpenAPIOperations {
    public static func operationIDs(_ file: String) throws -> [String: String?] {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        var ids: [String: String?] = [:]
        var inPaths = false
        var path: String?
        var operation: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, let first = line.first, first != " " { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
                operation = nil
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":"), let path {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                operation = ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) ? "\(method) \(path)" : nil
                if let operation { ids[operation] = .some(nil) }
            } else if let operation, line.hasPrefix("      operationId:") {
                ids[operation] = .some(line.dropFirst("      operationId:".count).trimmingCharacters(in: .whitespaces))
            }
        }
        return ids
    }

    /// "METHOD /path" → the names of its query parameters (path-level and operation-level; `$ref`s to
    /// `components/parameters` resolved), read from the YAML's layout like `operationIDs`: an implementation
    /// independent of the generator that compiles the same table into the coordinator.
    public static func queryParameters(_ file: String) throws -> [String: Set<String>] {
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func indent(_ line: String) -> Int { line.prefix { $0 == " " }.count }
        // components/parameters: name → (parameter name, location).
        var components: [String: (name: String, location: String)] = [:]
        var inComponents = false, inParameters = false, current: String?
        for line in lines {
            if line == "components:" { inComponents = true; continue }
            if inComponents, let first = line.first, first != " " { inComponents = false }
            guard inComponents else { continue }
            if indent(line) == 2 { inParameters = line == "  parameters:"; current = nil; continue }
            guard inParameters else { continue }
            if indent(line) == 4, line.hasSuffix(":") { current = line.trimmingCharacters(in: .whitespaces).dropLast().description; continue }
            guard let key = current, indent(line) == 6 else { continue }
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("name: ") { components[key, default: ("", "")].name = String(t.dropFirst(6)) }
            if t.hasPrefix("in: ") { components[key, default: ("", "")].location = String(t.dropFirst(4)) }
        }
        // Walk the paths: each `parameters:` list item is a $ref or a name followed by its `in:`.
        var out: [String: Set<String>] = [:]
        var inPaths = false, path: String?, operation: String?, pathLevel: Set<String> = []
        var listIndent: Int?, pendingName: String?
        for line in lines {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, let first = line.first, first != " " { inPaths = false }
            guard inPaths else { continue }
            let level = indent(line), t = line.trimmingCharacters(in: .whitespaces)
            if let l = listIndent, level <= l, !t.hasPrefix("- ") || level < l { listIndent = nil }
            if level == 2, t.hasSuffix(":") {
                path = String(t.dropLast()); operation = nil; pathLevel = []; continue
            }
            if level == 4, t.hasSuffix(":"), let path {
                let method = t.dropLast().uppercased()
                if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) {
                    operation = "\(method) \(path)"
                    out[operation!] = pathLevel
                } else {
                    operation = nil
                }
                if t == "parameters:" { listIndent = 6 }
                continue
            }
            if level == 6, t == "parameters:", operation != nil { listIndent = 8; continue }
            guard let l = listIndent else { continue }
            func add(_ name: String) {
                if let operation { out[operation, default: []].insert(name) } else { pathLevel.insert(name) }
            }
            if level == l, t.hasPrefix("- $ref: ") {
                let ref = t.dropFirst("- $ref: ".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                if let c = components[String(ref.split(separator: "/").last ?? "")], c.location == "query" { add(c.name) }
            } else if level == l, t.hasPrefix("- name: ") {
                pendingName = String(t.dropFirst("- name: ".count))
            } else if level == l + 2, t == "in: query", let name = pendingName {
                add(name); pendingName = nil
            }
        }
        return out
    }
}
