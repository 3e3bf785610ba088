import ArgumentParser
import FleetAPI
import FleetClient
import Foundation

struct ReleasesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "releases",
        abstract: "Move devices to a published model in waves; pause, resume, cancel or roll that back.",
        subcommands: [ReleasesCreate.self, ReleasesList.self, ReleasesGet.self, ReleasesEvents.self, ReleasesWatch.self, ReleasesPause.self, ReleasesResume.self,
                      ReleasesCancel.self, ReleasesRollback.self])

    static let spec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("MODEL", "model_id", fixed: true), Column("STATUS", "status"),
                  Column("SELECTOR", "selector"), Column("START AT", "start_at")],
        extra: [Column("CAMPAIGN", "campaign.id", fixed: true), Column("JOBS", "campaign.counts"), Columns.created])
}

struct ReleasesCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Release a model to the selected devices: each measures it (a profile job), then its config moves to it.",
        discussion: "Give the release with flags, or as the JSON body of POST /v1/releases with --file (see docs/api.md).")

    @Option(help: "A JSON file with the whole request (`-` reads standard input); the other release flags are then not allowed.")
    var file: String?
    @Option(help: "The id of the model to release.") var model: ResourceID?
    @Option(help: "Select the devices with all these labels, e.g. kind=robot.") var labels: LabelSet?
    @Option(help: "Select these devices, comma-separated ids.") var devices: DeviceIDList?
    @Option(help: "No job is leased before this time (RFC 3339, e.g. 2027-01-01T02:00:00Z).") var startAt: Timestamp?
    @OptionGroup var rollout: RolloutFlags
    @Option(help: "Idempotency-Key of the request (default: a new one).") var idempotencyKey: String?
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if file != nil {
            guard model == nil, labels == nil, devices == nil, startAt == nil else {
                throw ValidationError("--file gives the whole request; drop --model, --labels, --devices and --start-at")
            }
            return
        }
        guard model != nil else { throw ValidationError("missing --model (or give --file)") }
        guard labels != nil || devices != nil else { throw ValidationError("select devices with --labels or --devices") }
    }

    func run() throws {
        try AdminExit.guarding {
            let body: Data
            if let file {
                body = try requestBody(file: file)
            } else {
                body = try WireJSON.encode(ReleaseRequest(modelID: model!.uuid, selector: .init(labels: labels?.labels, deviceIDs: devices?.ids),
                                                          rollout: rollout.rollout, startAt: startAt?.date))
            }
            let r = try connection.client().exchange("POST", "/v1/releases", body: body, headers: idempotencyHeaders(idempotencyKey))
            try Lister.show(r, output: output, spec: ReleasesCommand.spec)
        }
    }
}

struct ReleasesList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List releases, oldest first.")

    @Option(help: "Only releases in this status.") var status: CampaignStatus?
    @Option(help: "Only releases of this model.") var model: ResourceID?
    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/releases", query: [("status", status?.rawValue), ("model_id", model?.description)],
                            paging: paging, output: output, spec: ReleasesCommand.spec)
        }
    }
}

struct ReleasesGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one release and its campaign's progress.")

    @Argument(help: "The release's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("GET", "/v1/releases/\(id)"), output: output, spec: ReleasesCommand.spec)
        }
    }
}

protocol ReleaseTransition: StateTransition {}

extension ReleaseTransition {
    static var collection: String { "releases" }
    static var spec: TableSpec { ReleasesCommand.spec }
}

struct ReleasesPause: ReleaseTransition {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause a release: no new job is leased.")
    static let action = "pause"
    @Argument(help: "The release's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}

struct ReleasesResume: ReleaseTransition {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused release.")
    static let action = "resume"
    @Argument(help: "The release's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}

struct ReleasesCancel: ReleaseTransition {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a release: devices not yet moved keep their model.")
    static let action = "cancel"
    @Argument(help: "The release's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}

struct ReleasesEvents: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "List a release's history (its campaign's events), oldest first.")

    @Argument(help: "The release's id.") var id: ResourceID
    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/releases/\(id)/events", query: [], paging: paging, output: output,
                            spec: CampaignsCommand.eventSpec)
        }
    }
}

struct ReleasesRollback: ReleaseTransition {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Give every device the release moved its previous config (and model) back; the release ends rolled_back.",
        discussion: "Each device gets a restore job that puts its previous adapters back; a device offline past the coordinator's restore deadline does not hold the rollback open (its job stays queued and runs when it returns). A canceled release can be rolled back too (what its finished waves changed). Repeating it answers the current figures, changes no config and queues failed restore jobs again.")
    static let action = "rollback"
    static let spec = CampaignsCommand.rollbackSpec
    @Argument(help: "The release's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}

struct ReleasesWatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Follow a release's campaign to its end like `fleetadapt campaigns watch`.",
        discussion: "Exits 0 when the release completes and 2 when it is aborted, canceled or rolled back.")

    @Argument(help: "The release's id.") var id: ResourceID
    @OptionGroup var watching: WatchOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            let client = try connection.client()
            let release = try JSONDocument.parse(try client.exchange("GET", "/v1/releases/\(id)").body)
            guard let text = release["campaign"]["id"].string, let campaign = UUID(uuidString: text) else {
                throw ValidationError("GET /v1/releases/\(id) answered no campaign id")
            }
            try watching.watch(client, campaign: campaign)
        }
    }
}
