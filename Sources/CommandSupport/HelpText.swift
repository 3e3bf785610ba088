/// Help paragraphs as argument-parser wants them: one line each, so it wraps them to the terminal's width itself.
/// Discussions are written in the source at a readable width; `reflow` joins each paragraph's lines (lines that
/// start at the margin, up to a blank line) and keeps indented lines — examples, lists — as they are, a list item's
/// deeper-indented continuation joined onto its item (a shell line ending in `\` keeps its break). Without it, help is wrapped twice: once in the source at ~110
/// columns, then again by argument-parser at 80, leaving ragged half-lines.
public enum HelpText {
    public static func reflow(_ text: String) -> String {
        var out: [String] = []
        /// The indentation of the line `out.last` was started from (nil after a blank line).
        var lastIndent: Int?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let indent = line.prefix { $0 == " " }.count
            let content = line.dropFirst(indent)
            if content.isEmpty {
                out.append("")
                lastIndent = nil
                continue
            }
            if let last = lastIndent, let previous = out.last, !previous.hasSuffix("\\"),
               (indent == 0 && last == 0) || (indent > 0 && last > 0 && indent > last + 1) {
                out[out.count - 1] += " " + content
                continue
            }
            out.append(line)
            lastIndent = indent
        }
        return out.joined(separator: "\n")
    }
}
