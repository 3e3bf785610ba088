import ArgumentParser
import FleetAPI
import FleetClient
import Foundation

/// Exit statuses scripts can rely on (docs/operations.md lists them): 0 done, 1 any other runtime error (the
/// coordinator unreachable, a 400/422/429/5xx refusal), 2 a watched campaign ended without completing, 3 not
/// found, 4 a conflict or failed precondition, 5 not authenticated or not allowed, 64 a usage error.
enum AdminExit {
    static let incomplete: Int32 = 2
    static let notFound: Int32 = 3
    static let conflict: Int32 = 4
    static let unauthorised: Int32 = 5

    static func code(for problem: ProblemError) -> Int32 {
        switch problem.status {
        case 404: notFound
        case 409, 412: conflict
        case 401, 403: unauthorised
        default: 1
        }
    }

    /// Runs `body`; a refusal from the coordinator is printed as `Error: <request>: HTTP <status> <code>: <detail>
    /// (<field>: <message>; …)` on standard error and exits with its status's code.
    static func guarding(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let problem as ProblemError {
            FileHandle.standardError.write(Data("Error: \(problem)\n".utf8))
            throw ExitCode(code(for: problem))
        }
    }
}

/// A resource id given on the command line: a UUID, sent in lower case.
struct ResourceID: ExpressibleByArgument, CustomStringConvertible {
    var uuid: UUID

    init?(argument: String) {
        guard let id = UUID(uuidString: argument) else { return nil }
        uuid = id
    }

    var description: String { uuid.uuidString.lowercased() }
}

/// `--labels site=berlin,tier=cam`: keys of letters, digits, `.`, `_`, `/`, `-`; values without `,` or `=`.
struct LabelSet: ExpressibleByArgument, CustomStringConvertible {
    var labels: [String: String]

    init?(argument: String) {
        guard case .success(let l) = Labels.parseSelector(argument) else { return nil }
        labels = l
    }

    var description: String { CoordinatorClient.selectorText(labels) }
}

/// Device ids, comma-separated.
struct DeviceIDList: ExpressibleByArgument {
    var ids: [UUID]

    init?(argument: String) {
        let parts = argument.split(separator: ",").map { UUID(uuidString: $0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        ids = parts.compactMap { $0 }
    }
}

/// An RFC 3339 time (`2027-01-01T00:00:00Z`).
struct Timestamp: ExpressibleByArgument {
    var date: Date
    var text: String

    init?(argument: String) {
        let formatter = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let d = formatter.date(from: argument) ?? fractional.date(from: argument) else { return nil }
        date = d
        text = argument
    }
}

/// Paging of list commands: one page by default (the coordinator's page size), `--limit N` items at most over as
/// many pages as that takes, `--all` every page.
struct ListOptions: ParsableArguments {
    @Option(help: "Show at most this many items (pages of up to 500 are fetched until there are enough).")
    var limit: Int?

    @Flag(help: "Fetch every page.")
    var all = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if all && limit != nil { throw ValidationError("--all and --limit exclude each other") }
    }
}

/// The shared body of the list commands.
enum Lister {
    static let pageSize = 500
    static let maxPages = 10_000

    /// Fetches the pages `paging` asks for and prints them. One page as it came is printed as the coordinator's
    /// body; several are merged into `{"items": […], "next": <the last cursor or null>}`.
    static func list(_ client: CoordinatorClient, _ path: String, query: [(String, String?)], paging: ListOptions,
                     output: OutputOptions, spec: TableSpec) throws {
        var items: [JSONDocument] = []
        var cursor: String?
        var bodies: [Data] = []
        var seen: Set<String> = []
        for _ in 0..<maxPages {
            let want: Int? = paging.all ? pageSize : paging.limit.map { min(pageSize, $0 - items.count) }
            var q = query + [("limit", want.map(String.init))]
            if let cursor { q.append(("after", cursor)) }
            let body = try client.exchange("GET", path, query: q).body
            bodies.append(body)
            let page = try JSONDocument.parse(body)
            items += page["items"].items
            cursor = page["next"].string
            guard let next = cursor, seen.insert(next).inserted else { cursor = nil; break }
            if !paging.all && (paging.limit.map { items.count >= $0 } ?? true) { break }
        }
        if let limit = paging.limit, items.count > limit { items = Array(items.prefix(limit)) }
        let printer = Printer(format: output.output)
        if bodies.count == 1 {
            try printer.emit(body: bodies[0], items: items, spec: spec)
        } else {
            let next = cursor.map(JSONDocument.string) ?? JSONDocument.null
            try printer.emit(document: .object([("items", .array(items)), ("next", next)]), items: items, spec: spec)
        }
        if cursor != nil, !paging.all, output.output == .table || output.output == .wide {
            FileHandle.standardError.write(Data("(more: --all for every page, or --limit N)\n".utf8))
        }
    }

    /// Prints one resource.
    static func show(_ response: CoordinatorClient.Response, output: OutputOptions, spec: TableSpec, item: (JSONDocument) -> JSONDocument = { $0 }) throws {
        let document = try JSONDocument.parse(response.body)
        try Printer(format: output.output).emit(body: response.body, items: [item(document)], spec: spec)
    }
}

/// Where a secret the coordinator shows once (a device token, an API key, an enrolment token) goes: printed, or
/// with `--secret-file` written to a new 0600 file and left out of what is printed.
struct SecretOptions: ParsableArguments {
    @Option(help: "Write the secret the answer carries (shown only this once) to this new file (mode 0600) instead of printing it.")
    var secretFile: String?

    /// Prints a creating answer: the resource (`member` of the body) as a table or the whole body as json/yaml, and
    /// the secret (`token`) on its own line, or into the file.
    func emit(_ response: CoordinatorClient.Response, member: String?, output: OutputOptions, spec: TableSpec, label: String) throws {
        let document = try JSONDocument.parse(response.body)
        guard let secret = document["token"].string else {
            return try Printer(format: output.output).emit(body: response.body, items: [member.map { document[$0] } ?? document], spec: spec)
        }
        let resource = member.map { document[$0] } ?? document
        if let secretFile {
            try Self.store(secret, in: secretFile)
            guard case .object(let members) = document else { return }
            let rest = JSONDocument.object(members.filter { $0.0 != "token" })
            try Printer(format: output.output).emit(document: rest, items: [resource], spec: spec)
            FileHandle.standardError.write(Data("\(label) written to \(secretFile).\n".utf8))
        } else {
            // json and yaml carry the secret in the document, as the coordinator sent it.
            try Printer(format: output.output).emit(body: response.body, items: [resource], spec: spec)
            if output.output == .table || output.output == .wide { print("\(label) (shown only now): \(secret)") }
            // -o id keeps standard output to the id; the secret still reaches the operator, once.
            if output.output == .id { FileHandle.standardError.write(Data("\(label) (shown only now): \(secret)\n".utf8)) }
        }
    }

    static func store(_ secret: String, in path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("--secret-file: cannot create \(path): \(String(cString: strerror(errno)))") }
        let data = Data((secret + "\n").utf8)
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard close(fd) == 0, written == data.count else { throw ValidationError("--secret-file: cannot write \(path)") }
    }
}

/// A JSON request body from a file (`--file spec.json`, `-` for standard input), checked to be JSON here so a
/// typo is named before anything is sent; the coordinator validates its fields.
func requestBody(file: String, flag: String = "--file") throws -> Data {
    let data: Data?
    if file == "-" { data = FileHandle.standardInput.readDataToEndOfFile() } else { data = FileManager.default.contents(atPath: file) }
    guard let data else { throw ValidationError("\(flag): cannot read \(file)") }
    guard data.count <= 1 << 20 else { throw ValidationError("\(flag): \(file) is larger than the coordinator's 1 MiB limit") }
    do { _ = try JSONDocument.parse(data) } catch { throw ValidationError("\(flag): \(file): \(error)") }
    return data
}

/// A fresh `Idempotency-Key` for a creating POST, so that a retried request cannot create twice.
func idempotencyHeaders(_ given: String?) -> [String: String] {
    ["Idempotency-Key": given ?? UUID().uuidString.lowercased()]
}

/// The common time columns.
enum Columns {
    static let created = Column("CREATED", "created_at")
}
