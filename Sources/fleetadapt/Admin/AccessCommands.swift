import ArgumentParser
import FleetAPI
import FleetClient
import Foundation

/// API keys (admin), enrolment tokens (operator) and the audit log (admin).
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list and revoke API keys (admin).",
        subcommands: [KeysCreate.self, KeysList.self, KeysRevoke.self])

    static let spec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("NAME", "name"), Column("ROLE", "role"), Column("EXPIRES", "expires_at"),
                  Column("REVOKED", "revoked_at")],
        extra: [Columns.created])
}

extension Role: ExpressibleByArgument {}

struct KeysCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an API key; its secret is printed only this once (or written to --secret-file).")

    @Option(help: "What the key is for, e.g. ci.") var name: String
    @Option(help: "Its role.") var role: Role
    @Option(help: "When it stops working (RFC 3339, e.g. 2027-06-30T00:00:00Z); default: never.") var expiresAt: Timestamp?
    @OptionGroup var secret: SecretOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            let body = try WireJSON.encode(ApiKeyRequest(name: name, role: role.rawValue, expiresAt: expiresAt?.date))
            let r = try connection.client().exchange("POST", "/v1/api-keys", body: body, attempts: 1)
            try secret.emit(r, member: "api_key", output: output, spec: KeysCommand.spec, label: "API key")
        }
    }
}

struct KeysList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List API keys (never their secrets).")

    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/api-keys", query: [], paging: paging, output: output, spec: KeysCommand.spec)
        }
    }
}

struct KeysRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an API key: it is refused from now on.")

    @Argument(help: "The key's id (not its secret).") var id: ResourceID
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            _ = try connection.client().exchange("DELETE", "/v1/api-keys/\(id)", attempts: 1)
            print("API key \(id) revoked.")
        }
    }
}

struct EnrolmentTokensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enrolment-tokens",
        abstract: "Create, list and revoke the tokens devices register themselves with (operator).",
        subcommands: [EnrolmentTokensCreate.self, EnrolmentTokensList.self, EnrolmentTokensRevoke.self])

    static let spec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("LABELS", "labels"),
                  Column("USES") { t in "\(t["uses"].cell)/\(t["max_uses"].isNull ? "∞" : t["max_uses"].cell)" },
                  Column("EXPIRES", "expires_at"), Column("REVOKED", "revoked_at")],
        extra: [Columns.created])
}

struct EnrolmentTokensCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an enrolment token bound to labels; its secret is printed only this once (or written to --secret-file).")

    @Option(help: "Labels every device enrolled with it gets, e.g. site=berlin.") var labels: LabelSet?
    @Option(help: "When it stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).") var expiresAt: Timestamp?
    @Option(help: "How many devices may enrol with it (default: no limit).") var maxUses: Int?
    @OptionGroup var secret: SecretOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            let body = try WireJSON.encode(EnrolmentTokenRequest(labels: labels?.labels, expiresAt: expiresAt?.date, maxUses: maxUses))
            let r = try connection.client().exchange("POST", "/v1/enrolment-tokens", body: body, attempts: 1)
            try secret.emit(r, member: "enrolment_token", output: output, spec: EnrolmentTokensCommand.spec, label: "Enrolment token")
        }
    }
}

struct EnrolmentTokensList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List enrolment tokens (never their secrets).")

    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/enrolment-tokens", query: [], paging: paging, output: output,
                            spec: EnrolmentTokensCommand.spec)
        }
    }
}

struct EnrolmentTokensRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke an enrolment token; the devices it enrolled stay.")

    @Argument(help: "The token's id (not its secret).") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("POST", "/v1/enrolment-tokens/\(id)/revoke", attempts: 1), output: output,
                            spec: EnrolmentTokensCommand.spec)
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Read the audit log (admin).", subcommands: [AuditList.self])

    static let spec = TableSpec(
        columns: [Column("AT", "at"), Column("ACTOR") { e in e["actor_name"].isNull ? e["actor_kind"].cell : "\(e["actor_kind"].cell):\(e["actor_name"].cell)" },
                  Column("METHOD", "method"), Column("ROUTE", "route"), Column("RESOURCE", "resource_id"), Column("STATUS", "status")],
        extra: [Column("ACTOR ID", "actor_id"), Column("REQUEST ID", "request_id"), Column("CLIENT", "client_address")])
}

struct AuditList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List audit entries, newest first: every mutation and every refused credential.")

    @Option(help: "Only this actor: a key's id, or a kind (admin_key, api_key, device, enrolment_token, anonymous).") var actor: String?
    @Option(help: "Only this route template, e.g. /v1/devices/{id}.") var route: String?
    @Option(help: "Only entries at or after this time (RFC 3339).") var since: Timestamp?
    @Option(help: "Only entries before this time (RFC 3339).") var until: Timestamp?
    @Option(help: "Only entries with this HTTP status, e.g. 403.") var status: Int?
    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let status, !(100...599).contains(status) { throw ValidationError("--status must be an HTTP status, 100–599") }
    }

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/audit", query: [
                ("actor", actor), ("route", route), ("since", since?.text), ("until", until?.text), ("status", status.map(String.init)),
            ], paging: paging, output: output, spec: AuditCommand.spec)
        }
    }
}
