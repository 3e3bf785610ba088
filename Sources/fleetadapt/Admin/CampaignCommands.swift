import ArgumentParser
import FleetAPI
import FleetClient
import Foundation

struct DomainsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domains",
        abstract: "Post domain shifts (each starts an adaptation campaign) and list them.",
        subcommands: [DomainsCreate.self, DomainsList.self, DomainsGet.self])

    static let spec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("NAME", "name"), Column("MODEL", "model_id", fixed: true),
                  Column("CAMPAIGN", "campaign_id", fixed: true)],
        extra: [Column("SELECTOR", "spec.selector"), Column("JOB", "spec.job"), Columns.created])
}

/// The job of a domain or of a trigger's domain template, from flags.
struct JobFlags: ParsableArguments {
    @Option(help: "What the jobs do: adapt (train adapters) or profile (measure every variant).") var kind: String = "adapt"
    @Option(help: "Adaptation loss: tent, shot-im, eata or bn-stats.") var loss: String = "shot-im"
    @Option(help: "Training steps per job.") var steps: Int = 40
    @Option(help: "Seconds a job may run before it is retried.") var jobTimeout: Int = 600
    @Option(help: "Attempts per job.") var maxAttempts: Int = 3

    func validate() throws {
        guard kind == "adapt" || kind == "profile" else { throw ValidationError("--kind must be adapt or profile") }
        _ = try jobLoss()
    }

    func jobLoss() throws -> JobLoss {
        if kind == "profile" { return .noTraining }
        guard let l = JobLoss(rawValue: loss), JobLoss.trainable.contains(l) else {
            throw ValidationError("--loss must be one of: \(JobLoss.trainable.map(\.rawValue).joined(separator: ", "))")
        }
        return l
    }

    func spec() throws -> DomainRequest.JobSpec {
        .init(kind: kind, loss: try jobLoss(), steps: kind == "profile" ? 0 : steps, timeoutS: jobTimeout, maxAttempts: maxAttempts)
    }
}

/// The waves of a rollout, from flags; none given keeps the coordinator's defaults.
struct RolloutFlags: ParsableArguments {
    @Option(help: "Per cent of the devices in the canary wave.") var canaryPct: Double?
    @Option(help: "Per cent of the devices in each later wave.") var waveSizePct: Double?
    @Option(help: "Per cent of a wave's jobs that must succeed before the next is released.") var successThresholdPct: Double?

    var rollout: DomainRequest.Rollout? {
        guard canaryPct != nil || waveSizePct != nil || successThresholdPct != nil else { return nil }
        let d = DomainRequest.Rollout()
        return .init(canaryPct: canaryPct ?? d.canaryPct, waveSizePct: waveSizePct ?? d.waveSizePct,
                     successThresholdPct: successThresholdPct ?? d.successThresholdPct)
    }
}

/// How `--watch` follows a campaign, and what its outcome means for the exit status.
struct WatchOptions: ParsableArguments {
    @Option(help: "Seconds between two reads of the campaign.")
    var interval: Double = 2

    @Option(help: "Give up watching after this many seconds (exit 1); 0 watches until the campaign ends.")
    var timeout: Double = 0

    func validate() throws {
        guard (0.1...300).contains(interval) else { throw ValidationError("--interval must be 0.1–300 seconds") }
        guard timeout >= 0 else { throw ValidationError("--timeout must be 0 or more seconds") }
    }

    /// Watches to the end, prints the per-device table, and exits 2 unless the campaign completed.
    func watch(_ client: CoordinatorClient, campaign: UUID) throws {
        let watcher = CampaignWatch(client: client, id: campaign, interval: interval, timeout: timeout > 0 ? timeout : nil)
        let status = try watcher.run()
        try watcher.printDeviceTable()
        print("\ncampaign \(status.rawValue).")
        guard status == .completed else { throw ExitCode(AdminExit.incomplete) }
    }
}

struct DomainsCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Post a domain shift; its campaign rolls adapt (or profile) jobs out to the selected devices.",
        discussion: "Give the domain with flags, or as the JSON body of POST /v1/domains with --file (rollout, abort rule, gate: see docs/api.md). With --watch, follows the campaign like `fleetadapt campaigns watch`.")

    @Option(help: "A JSON file with the whole request (`-` reads standard input); the other domain flags are then not allowed.")
    var file: String?
    @Option(help: "The domain's name, e.g. fog-berlin.") var name: String?
    @Option(help: "The id of the published model to adapt.") var model: ResourceID?
    @Option(help: "Select the devices with all these labels, e.g. site=berlin.") var labels: LabelSet?
    @Option(help: "Select these devices, comma-separated ids.") var devices: DeviceIDList?
    @OptionGroup var job: JobFlags
    @OptionGroup var rollout: RolloutFlags
    @Option(help: "Idempotency-Key of the request (default: a new one).") var idempotencyKey: String?
    @Flag(help: "Follow the campaign to its end (exit 0 when it completes, 2 when it is aborted or canceled).") var watch = false
    @OptionGroup var watching: WatchOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if file != nil {
            guard name == nil, model == nil, labels == nil, devices == nil else {
                throw ValidationError("--file gives the whole request; drop --name, --model, --labels and --devices")
            }
            return
        }
        guard name != nil else { throw ValidationError("missing --name (or give --file)") }
        guard model != nil else { throw ValidationError("missing --model (or give --file)") }
        guard labels != nil || devices != nil else { throw ValidationError("select devices with --labels or --devices") }
    }

    func run() throws {
        try AdminExit.guarding {
            let body: Data
            if let file {
                body = try requestBody(file: file)
            } else {
                body = try WireJSON.encode(DomainRequest(
                    name: name!, modelID: model!.uuid, selector: .init(labels: labels?.labels, deviceIDs: devices?.ids), rollout: rollout.rollout,
                    job: try job.spec()))
            }
            let client = try connection.client()
            let r = try client.exchange("POST", "/v1/domains", body: body, headers: idempotencyHeaders(idempotencyKey))
            let document = try JSONDocument.parse(r.body)
            try Printer(format: output.output).emit(body: r.body, items: [document["domain"]], spec: DomainsCommand.spec)
            guard watch else { return }
            guard let text = document["campaign"]["id"].string, let campaign = UUID(uuidString: text) else {
                throw ValidationError("POST /v1/domains answered no campaign id")
            }
            try watching.watch(client, campaign: campaign)
        }
    }
}

struct DomainsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List domains, oldest first.")

    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/domains", query: [], paging: paging, output: output, spec: DomainsCommand.spec)
        }
    }
}

struct DomainsGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one domain and the request it was posted with.")

    @Argument(help: "The domain's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("GET", "/v1/domains/\(id)"), output: output, spec: DomainsCommand.spec)
        }
    }
}

struct CampaignsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaigns",
        abstract: "Follow, pause, resume, cancel and roll back campaigns; list their jobs and events.",
        subcommands: [CampaignsList.self, CampaignsGet.self, CampaignsJobs.self, CampaignsEvents.self, CampaignsWatch.self, CampaignsPause.self,
                      CampaignsResume.self, CampaignsCancel.self, CampaignsCancelJob.self, CampaignsRetryFailed.self, CampaignsRollback.self])

    static let spec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("STATUS", "status"), Column("DEVICES", "target_count"),
                  Column("WAVE") { c in c["wave_count"].number.map { "\(min(Int(c["released_wave"].number ?? 0) + 1, Int($0)))/\(Int($0))" } ?? "-" },
                  Column("PROGRESS") { c in c["progress"].number.map { String(format: "%.0f%%", $0 * 100) } ?? "-" },
                  Column("JOBS", "counts")],
        extra: [Column("DOMAIN", "domain_id", fixed: true), Column("REASON", "status_reason"), Columns.created, Column("FINISHED", "finished_at")])

    static let jobSpec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("DEVICE", "device_id", fixed: true), Column("KIND", "kind"), Column("WAVE", "wave"),
                  Column("STATE", "state"), Column("ATTEMPT", "attempt"), Column("GATE", "gate.passed")],
        extra: [Column("OUTCOME", "outcome"), Column("ERROR", "error"), Column("UPDATED", "updated_at"), Column("FINISHED", "finished_at")])

    static let eventSpec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("AT", "at"), Column("KIND", "kind"), Column("CAUSE", "cause"), Column("DETAILS", "details")],
        extra: [Column("CAMPAIGN", "campaign_id", fixed: true)])

    /// What `POST …/rollback` answers.
    static let rollbackSpec = TableSpec(
        columns: [Column("CAMPAIGN", "campaign.id", fixed: true), Column("STATUS", "campaign.status"), Column("CHANGED", "changed_devices"),
                  Column("RESTORED", "restored_devices"), Column("UNCHANGED", "unchanged_devices"), Column("PENDING", "pending_devices")],
        extra: [Column("RESTORING", "restoring_devices"), Column("REAPPLIED", "reapplied_devices"), Column("FAILED", "restore_failed_devices"),
                Column("OVERDUE", "overdue_devices")])
}

struct CampaignsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List campaigns, oldest first.")

    @Option(help: "Only campaigns in this status.") var status: CampaignStatus?
    @Option(help: "Only the campaign of this domain.") var domain: ResourceID?
    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/campaigns", query: [("status", status?.rawValue), ("domain_id", domain?.description)],
                            paging: paging, output: output, spec: CampaignsCommand.spec)
        }
    }
}

extension CampaignStatus: ExpressibleByArgument {}
extension JobState: ExpressibleByArgument {}

struct CampaignsGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one campaign: its waves, job counts and gains.")

    @Argument(help: "The campaign's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            let r = try connection.client().exchange("GET", "/v1/campaigns/\(id)")
            try Lister.show(r, output: output, spec: CampaignsCommand.spec)
            guard output.output == .table || output.output == .wide else { return }
            let view = try CoordinatorClient.decode(CampaignView.self, r.body)
            print("")
            for line in CampaignWatch.lines(view, elapsed: (view.finishedAt ?? Date()).timeIntervalSince(view.createdAt)).dropFirst() {
                print(line)
            }
        }
    }
}

struct CampaignsJobs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "List a campaign's jobs with their state and gate verdict.")

    @Argument(help: "The campaign's id.") var id: ResourceID
    @Option(help: "Only jobs in this state.")
    var state: JobState?
    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/campaigns/\(id)/jobs", query: [("state", state?.rawValue)], paging: paging,
                            output: output, spec: CampaignsCommand.jobSpec)
        }
    }
}

struct CampaignsWatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Follow a campaign to its end with a progress bar per wave, then show every device's result.",
        discussion: "Exits 0 when the campaign completes and 2 when it is aborted or canceled; a paused campaign is followed until it is resumed or canceled. Progress goes to standard error (redrawn in place on a terminal, a line per change otherwise), the closing table to standard output.")

    @Argument(help: "The campaign's id.") var id: ResourceID
    @OptionGroup var watching: WatchOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding { try watching.watch(try connection.client(), campaign: id.uuid) }
    }
}

/// pause, resume, cancel, retry-failed of a campaign or a release: a POST with no body that answers the resource.
protocol StateTransition: ParsableCommand {
    /// `campaigns` or `releases`.
    static var collection: String { get }
    static var action: String { get }
    static var spec: TableSpec { get }
    var id: ResourceID { get }
    var output: OutputOptions { get }
    var connection: ConnectionOptions { get }
}

extension StateTransition {
    func transition() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("POST", "/v1/\(Self.collection)/\(id)/\(Self.action)", attempts: 1),
                            output: output, spec: Self.spec)
        }
    }
}

protocol CampaignTransition: StateTransition {}

extension CampaignTransition {
    static var collection: String { "campaigns" }
    static var spec: TableSpec { CampaignsCommand.spec }
}

struct CampaignsPause: CampaignTransition {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause a running campaign: no new job is leased.")
    static let action = "pause"
    @Argument(help: "The campaign's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}

struct CampaignsResume: CampaignTransition {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused campaign.")
    static let action = "resume"
    @Argument(help: "The campaign's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}

struct CampaignsCancel: CampaignTransition {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a campaign: its queued jobs are canceled.")
    static let action = "cancel"
    @Argument(help: "The campaign's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}

struct CampaignsCancelJob: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel-job",
        abstract: "Cancel one device's job of a campaign; the rest of the campaign goes on.",
        discussion: "A queued or retrying job is canceled at once; a leased one is fenced (the device's result is refused). It counts against the wave's success threshold like a failure. A job that already ended exits 4.")

    @Argument(help: "The campaign's id.") var id: ResourceID
    @Argument(help: "The job's id (campaigns jobs lists them).") var job: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("POST", "/v1/campaigns/\(id)/jobs/\(job)/cancel", attempts: 1),
                            output: output, spec: CampaignsCommand.spec)
        }
    }
}

struct CampaignsRetryFailed: CampaignTransition {
    static let configuration = CommandConfiguration(commandName: "retry-failed", abstract: "Queue the campaign's failed jobs again.")
    static let action = "retry-failed"
    @Argument(help: "The campaign's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}

struct CampaignsEvents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "List a campaign's history, oldest first: state changes with their time and cause.")

    @Argument(help: "The campaign's id.") var id: ResourceID
    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/campaigns/\(id)/events", query: [], paging: paging, output: output,
                            spec: CampaignsCommand.eventSpec)
        }
    }
}

struct CampaignsRollback: CampaignTransition {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Give every device the campaign changed its previous config and adapters back; the campaign ends rolled_back.",
        discussion: "Jobs not yet leased are canceled, and results of leased ones are refused. Each device gets a restore job that puts its previous adapters back; the rollback ends when those jobs end, or, for a device offline past the coordinator's restore deadline, without it (its job stays queued and runs when it returns). A canceled campaign can be rolled back too (what its finished waves changed). Repeating it answers the current figures, changes no config and queues failed restore jobs again.")
    static let action = "rollback"
    static let spec = CampaignsCommand.rollbackSpec
    @Argument(help: "The campaign's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions
    func run() throws { try transition() }
}
