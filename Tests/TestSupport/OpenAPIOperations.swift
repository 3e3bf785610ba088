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
}
