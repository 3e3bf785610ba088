import ArgumentParser
import Foundation

/// How an admin command prints what the coordinator answered.
enum OutputFormat: String, CaseIterable, ExpressibleByArgument {
    /// Columns that fit the terminal.
    case table
    /// More columns, same fitting.
    case wide
    /// The coordinator's JSON body exactly as it was sent.
    case json
    /// The same document as YAML.
    case yaml
    /// Only the ids (the first id column), one a line, for `MODEL=$(fleetadapt models publish … -o id)`.
    case id
}

struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "Output format: wide adds columns, json is the coordinator's answer as sent, yaml the same document as YAML, id only the ids.")
    var output: OutputFormat = .table
}

/// One column of a table: its header and how a cell is read from an item. `fixed` columns (ids) are never
/// truncated, so what a table shows can be pasted into the next command.
struct Column: Sendable {
    var header: String
    var fixed = false
    var value: @Sendable (JSONDocument) -> String

    init(_ header: String, fixed: Bool = false, _ value: @escaping @Sendable (JSONDocument) -> String) {
        self.header = header
        self.fixed = fixed
        self.value = value
    }

    /// A column showing the member at `path` (`hardware.class`).
    init(_ header: String, _ path: String, fixed: Bool = false) {
        let keys = path.split(separator: ".").map(String.init)
        self.init(header, fixed: fixed) { item in keys.reduce(item) { $0[$1] }.cell }
    }
}

/// The columns a resource shows: `table` shows `columns`, `wide` adds `extra`.
struct TableSpec: Sendable {
    var columns: [Column]
    var extra: [Column] = []

    func columns(wide: Bool) -> [Column] { wide ? columns + extra : columns }
}

/// Prints documents in the chosen format.
struct Printer {
    var format: OutputFormat
    var width: Int = Terminal.width()

    /// A single answer: json prints `body` unchanged, yaml renders it, tables show `items` (the answer itself
    /// for a single resource) with `spec`'s columns.
    func emit(body: Data, items: [JSONDocument], spec: TableSpec) throws {
        switch format {
        case .json:
            var out = body
            if out.last != UInt8(ascii: "\n") { out.append(UInt8(ascii: "\n")) }
            FileHandle.standardOutput.write(out)
        case .yaml:
            print(YAML.render(try JSONDocument.parse(body)), terminator: "")
        case .table, .wide:
            print(TableRenderer.render(items: items, columns: spec.columns(wide: format == .wide), width: width), terminator: "")
        case .id:
            guard let column = spec.columns.first(where: \.fixed) else { return }
            for item in items { print(column.value(item)) }
        }
    }

    /// A document this process assembled (pages merged by `--all`).
    func emit(document: JSONDocument, items: [JSONDocument], spec: TableSpec) throws {
        try emit(body: Data(document.json.utf8), items: items, spec: spec)
    }
}

enum Terminal {
    /// The width tables are fitted to: the terminal's (TIOCGWINSZ) when standard output is one, else `COLUMNS`,
    /// else 80.
    static func width(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        if isatty(STDOUT_FILENO) == 1 {
            var size = winsize()
            if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        }
        if let text = environment["COLUMNS"], let n = Int(text.trimmingCharacters(in: .whitespaces)), (20...10_000).contains(n) { return n }
        return 80
    }
}

/// Columns separated by two spaces, each as wide as its widest cell; when the table is wider than the terminal,
/// the widest truncatable column gives way first (cells cut with `…`), down to its header's width (at least 6);
/// when even that does not fit, the rightmost truncatable columns are left out (a note on standard error says
/// how many; `-o wide`, `-o json` or a wider terminal shows them).
enum TableRenderer {
    static func render(items: [JSONDocument], columns: [Column], width: Int) -> String {
        var columns = columns
        var hidden = 0
        func natural(_ c: Column) -> Int { max(c.header.count, items.map { c.value($0).count }.max() ?? 0) }
        func floorWidth(_ c: Column) -> Int { c.fixed ? natural(c) : min(natural(c), max(c.header.count, 6)) }
        while columns.count > 1, columns.map(floorWidth).reduce(0, +) + 2 * (columns.count - 1) > width,
              let last = columns.lastIndex(where: { !$0.fixed }) {
            columns.remove(at: last)
            hidden += 1
        }
        if hidden > 0 {
            FileHandle.standardError.write(Data("(\(hidden) column\(hidden == 1 ? "" : "s") left out at \(width) characters: a wider terminal, COLUMNS or -o json shows them)\n".utf8))
        }
        let rows = items.map { item in columns.map { $0.value(item) } }
        return render(headers: columns.map(\.header), fixed: columns.map(\.fixed), rows: rows, width: width)
    }

    static func render(headers: [String], fixed: [Bool], rows: [[String]], width: Int) -> String {
        guard !headers.isEmpty else { return "" }
        var widths = headers.indices.map { i in max(headers[i].count, rows.map { $0[i].count }.max() ?? 0) }
        let floor = headers.indices.map { max(headers[$0].count, 6) }
        var total = widths.reduce(0, +) + 2 * (headers.count - 1)
        while total > width {
            // The widest column that may still shrink.
            guard let i = widths.indices.filter({ !fixed[$0] && widths[$0] > floor[$0] }).max(by: { widths[$0] < widths[$1] }) else { break }
            let others = widths.indices.filter { $0 != i && !fixed[$0] }.map { widths[$0] }.max() ?? 0
            let step = max(1, min(total - width, widths[i] - max(floor[i], others)))
            widths[i] -= step
            total -= step
        }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                let text = cell.count > widths[i] ? String(cell.prefix(max(0, widths[i] - 1))) + "…" : cell
                out += i == cells.count - 1 ? text : text + String(repeating: " ", count: widths[i] - text.count + 2)
            }
            return out.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
        }
        return line(headers) + rows.map(line).joined()
    }
}

/// YAML for a JSON document: block mappings and sequences, scalars plain where YAML reads them back as the same
/// string (and as a string, not a number, boolean, null or time), double-quoted with JSON's escapes otherwise;
/// numbers as the coordinator wrote them.
enum YAML {
    static func render(_ value: JSONDocument) -> String {
        lines(value).map { $0 + "\n" }.joined()
    }

    static func lines(_ value: JSONDocument) -> [String] {
        switch value {
        case .object(let members) where !members.isEmpty:
            return members.flatMap { key, member -> [String] in
                let k = scalar(key)
                if let inline = inlineText(member) { return ["\(k): \(inline)"] }
                return ["\(k):"] + lines(member).map { "  " + $0 }
            }
        case .array(let items) where !items.isEmpty:
            return items.flatMap { item -> [String] in
                if let inline = inlineText(item) { return ["- \(inline)"] }
                let nested = lines(item)
                return ["- " + nested[0]] + nested.dropFirst().map { "  " + $0 }
            }
        default:
            return [inlineText(value) ?? ""]
        }
    }

    /// A value written on its key's line: scalars and empty collections.
    static func inlineText(_ value: JSONDocument) -> String? {
        switch value {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let n): number(n)
        case .string(let s): scalar(s)
        case .array(let a): a.isEmpty ? "[]" : nil
        case .object(let m): m.isEmpty ? "{}" : nil
        }
    }

    /// JSON's number text, with an exponent written as YAML 1.1 readers need it to read a float (`1e-05` →
    /// `1.0e-05`, `2.5e10` → `2.5e+10`); the value is unchanged.
    static func number(_ text: String) -> String {
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text }
        var mantissa = String(text[..<e])
        var exponent = String(text[text.index(after: e)...])
        if !mantissa.contains(".") { mantissa += ".0" }
        if !exponent.hasPrefix("-") && !exponent.hasPrefix("+") { exponent = "+" + exponent }
        return mantissa + "e" + exponent
    }

    static let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"]

    /// A string as a YAML scalar: plain when it starts with a letter or `_`, holds only letters, digits, `_`, `.`,
    /// `/`, `-` and single inner spaces, and is not a word YAML reads as a boolean or null; quoted otherwise.
    static func scalar(_ s: String) -> String {
        let bytes = Array(s.utf8)
        func letter(_ b: UInt8) -> Bool { (65...90).contains(b) || (97...122).contains(b) }
        let plain = !bytes.isEmpty && (letter(bytes[0]) || bytes[0] == UInt8(ascii: "_"))
            && bytes.allSatisfy { letter($0) || (48...57).contains($0) || "_./- ".utf8.contains($0) }
            && bytes.last != UInt8(ascii: " ") && !s.contains("  ") && !reserved.contains(s.lowercased())
        return plain ? s : JSONDocument.quoted(s)
    }
}
