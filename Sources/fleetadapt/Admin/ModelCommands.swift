import ArgumentParser
import FleetClient
import Foundation

/// The model registry on the coordinator (`fleetadapt model …` builds and inspects package files locally).
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Publish, list, deprecate and delete models on the coordinator.",
        subcommands: [ModelsList.self, ModelsGet.self, ModelsPublish.self, ModelsDeprecate.self, ModelsDelete.self])

    static let spec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("NAME", "name"), Column("VERSION", "version"), Column("TAGS", "tags"),
                  Column("COMBINATIONS", "combination_count"), Column("DEPRECATED", "deprecated_at")],
        extra: [Column("FAMILY", "family"), Column("SIZE", "size_bytes"), Column("SHA256", "sha256"), Columns.created])
}

struct ModelsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List published models.")

    @Option(help: "Only the versions of this name.") var name: String?
    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/models", query: [("name", name)], paging: paging, output: output, spec: ModelsCommand.spec)
        }
    }
}

struct ModelsGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one model: blocks, variants, profiles, the accuracy estimator.")

    @Argument(help: "The model's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("GET", "/v1/models/\(id)"), output: output, spec: ModelsCommand.spec)
        }
    }
}

struct ModelsPublish: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish an elastic package (.fap); it moves no device until a release names it.",
        discussion: "Publishing the same bytes again answers the model published first.")

    @Option(help: "The package file, as `fleetadapt model build` writes it.") var package: String
    @Option(help: "The model's name; each publish of a name gets the next version.") var name: String?
    @Option(help: "Tags, comma-separated, e.g. stable,cameras.") var tags: String?
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard FileManager.default.isReadableFile(atPath: package) else { throw ValidationError("--package: cannot read \(package)") }
    }

    func run() throws {
        try AdminExit.guarding {
            guard let bytes = FileManager.default.contents(atPath: package) else { throw ValidationError("--package: cannot read \(package)") }
            // The coordinator answers the same model for the same bytes, so a retried upload cannot publish twice.
            let r = try connection.client().exchange("POST", "/v1/models", query: [("name", name), ("tags", tags)], body: bytes,
                                                     contentType: "application/octet-stream", attempts: 3)
            try Lister.show(r, output: output, spec: ModelsCommand.spec)
        }
    }
}

struct ModelsDeprecate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deprecate", abstract: "Take a model out of service: no new plan or release may choose it; devices running it keep it.")

    @Argument(help: "The model's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("POST", "/v1/models/\(id)/deprecate", attempts: 1), output: output,
                            spec: ModelsCommand.spec)
        }
    }
}

struct ModelsDelete: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a model nothing refers to (a model a config or release names is a conflict, exit 4).")

    @Argument(help: "The model's id.") var id: ResourceID
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            _ = try connection.client().exchange("DELETE", "/v1/models/\(id)", attempts: 1)
            print("Model \(id) deleted.")
        }
    }
}
