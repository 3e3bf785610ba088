import ArgumentParser
import FleetAPI
import FleetClient
import Foundation

struct TriggersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "triggers",
        abstract: "Drift triggers: when enough of the selected devices drift, a domain and its campaign are created over them.",
        subcommands: [TriggersList.self, TriggersGet.self, TriggersCreate.self, TriggersPatch.self, TriggersEnable.self, TriggersDisable.self,
                      TriggersDelete.self])

    static let spec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("NAME", "spec.name"), Column("ENABLED", "enabled"),
                  Column("CONDITION") { condition($0["spec"]["condition"]) }, Column("SELECTOR", "spec.selector"),
                  Column("FIRED", "fired_count"), Column("LAST FIRED", "last_fired_at")],
        extra: [Column("COOLDOWN S", "spec.cooldown_s"), Column("HOLDS SINCE", "condition_since"),
                Column("LAST DOMAIN", "last_domain_id", fixed: true), Column("VERSION", "version"), Columns.created])

    /// `entropy_rise>0.5 on 2 devices for 60 s`.
    static func condition(_ c: JSONDocument) -> String {
        guard let metric = c["metric"].string else { return "-" }
        var text = "\(metric)>\(c["threshold"].cell)"
        if c["min_pct"].number != nil { text += " on \(c["min_pct"].cell)%" } else {
            text += " on \(c["min_devices"].number.map { Int($0) } ?? 1) device(s)"
        }
        if let s = c["for_s"].number, s > 0 { text += " for \(Int(s)) s" }
        return text
    }
}

/// The drift condition of a trigger, from flags.
struct ConditionFlags: ParsableArguments {
    @Option(help: "What drifts: entropy_rise (prediction entropy above its baseline) or confidence_drop.") var metric: TriggerCondition.Metric?
    @Option(help: "How far beyond its baseline a device must be (at most 50 for entropy_rise, 1 for confidence_drop).") var threshold: Double?
    @Option(help: "Fire when at least this many selected devices drift (default 1).") var minDevices: Int?
    @Option(help: "Fire when at least this per cent of the selected devices drift (instead of --min-devices).") var minPct: Double?
    @Option(help: "Seconds the condition must hold before the trigger fires (default 0).") var forS: Int?

    var isEmpty: Bool { metric == nil && threshold == nil && minDevices == nil && minPct == nil && forS == nil }

    func validate() throws {
        if minDevices != nil && minPct != nil { throw ValidationError("--min-devices and --min-pct exclude each other") }
    }

    /// `current` (if any) with the flags given laid over it; a count flag replaces the other count.
    func condition(over current: TriggerCondition?) throws -> TriggerCondition {
        guard let metric = metric ?? current?.knownMetric else { throw ValidationError("missing --metric (entropy_rise or confidence_drop)") }
        guard let threshold = threshold ?? current?.threshold else { throw ValidationError("missing --threshold") }
        var c = TriggerCondition(metric: metric, threshold: threshold, minDevices: current?.minDevices, minPct: current?.minPct,
                                 forS: forS ?? current?.forS)
        if let minDevices { c.minDevices = minDevices; c.minPct = nil }
        if let minPct { c.minPct = minPct; c.minDevices = nil }
        return c
    }
}

extension TriggerCondition.Metric: ExpressibleByArgument {}

struct TriggersList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List triggers by id.")

    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/triggers", query: [], paging: paging, output: output, spec: TriggersCommand.spec)
        }
    }
}

struct TriggersGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Show one trigger: whether its condition holds and when it last fired.")

    @Argument(help: "The trigger's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("GET", "/v1/triggers/\(id)"), output: output, spec: TriggersCommand.spec)
        }
    }
}

struct TriggersCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a drift trigger over the selected devices.",
        discussion: "Give the trigger with flags, or as the JSON body of POST /v1/triggers with --file (abort rule, gate: see docs/api.md). When the condition holds, the trigger posts a domain over the drifting devices with the job and rollout given here, at most once per --cooldown-s.")

    @Option(help: "A JSON file with the whole request (`-` reads standard input); the other trigger flags are then not allowed.")
    var file: String?
    @Option(help: "The trigger's name, e.g. fog-watch.") var name: String?
    @Option(help: "What the trigger is for.") var description: String?
    @Option(help: "Watch the devices with all these labels, e.g. site=berlin.") var labels: LabelSet?
    @Option(help: "Watch these devices, comma-separated ids.") var devices: DeviceIDList?
    @OptionGroup var condition: ConditionFlags
    @Option(help: "Seconds after a firing during which the trigger does not fire again (default 3600).") var cooldownS: Int?
    @Option(help: "The model the domain adapts (default: the one most drifting devices run).") var model: ResourceID?
    @OptionGroup var job: JobFlags
    @OptionGroup var rollout: RolloutFlags
    @Flag(help: "Create it disabled: it is not evaluated until `fleetadapt triggers enable`.") var disabled = false
    @Option(help: "Idempotency-Key of the request (default: a new one).") var idempotencyKey: String?
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if file != nil {
            guard name == nil, labels == nil, devices == nil, condition.isEmpty, model == nil else {
                throw ValidationError("--file gives the whole request; drop --name, --labels, --devices, --model and the condition flags")
            }
            return
        }
        guard name != nil else { throw ValidationError("missing --name (or give --file)") }
        guard labels != nil || devices != nil else { throw ValidationError("select devices with --labels or --devices") }
        _ = try condition.condition(over: nil)
    }

    func run() throws {
        try AdminExit.guarding {
            let body: Data
            if let file {
                body = try requestBody(file: file)
            } else {
                body = try WireJSON.encode(TriggerRequest(
                    name: name!, description: description, selector: .init(labels: labels?.labels, deviceIDs: devices?.ids),
                    condition: try condition.condition(over: nil), cooldownS: cooldownS,
                    domainTemplate: DomainTemplate(modelID: model?.uuid, job: try job.spec(), rollout: rollout.rollout),
                    enabled: disabled ? false : nil))
            }
            let r = try connection.client().exchange("POST", "/v1/triggers", body: body, headers: idempotencyHeaders(idempotencyKey))
            try Lister.show(r, output: output, spec: TriggersCommand.spec)
        }
    }
}

/// Sends a trigger patch under `If-Match`: the version read just before (or `--if-match`), so a trigger changed in
/// between is refused (exit 4) rather than overwritten.
struct TriggerPatcher {
    var id: ResourceID
    var ifMatch: String?
    var connection: ConnectionOptions
    var output: OutputOptions

    /// `make` answers the body from the trigger as it is now.
    func send(_ make: (TriggerView) throws -> Data) throws {
        try AdminExit.guarding {
            let client = try connection.client()
            let read = try client.exchange("GET", "/v1/triggers/\(id)")
            let current = try CoordinatorClient.decode(TriggerView.self, read.body)
            guard let tag = ifMatch ?? read.headers["etag"] else { throw ValidationError("GET /v1/triggers/\(id) answered no ETag") }
            let r = try client.exchange("PATCH", "/v1/triggers/\(id)", body: try make(current), headers: ["If-Match": tag],
                                        attempts: 1)
            try Lister.show(r, output: output, spec: TriggersCommand.spec)
        }
    }
}

struct TriggersPatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patch",
        abstract: "Change a trigger's name, selector, condition or cooldown.",
        discussion: "Condition flags change only what they name (--min-devices replaces --min-pct and the other way round); --labels or --devices replaces the selector. --file sends a JSON body of PATCH /v1/triggers/{id} as it is. The change is sent with If-Match like `fleetadapt devices patch`.")

    @Argument(help: "The trigger's id.") var id: ResourceID
    @Option(help: "A JSON file with the whole patch (`-` reads standard input); the other trigger flags are then not allowed.")
    var file: String?
    @Option(help: "The new name.") var name: String?
    @Option(help: "The new description.") var description: String?
    @Option(help: "Watch the devices with all these labels instead.") var labels: LabelSet?
    @Option(help: "Watch these devices instead, comma-separated ids.") var devices: DeviceIDList?
    @OptionGroup var condition: ConditionFlags
    @Option(help: "The new cooldown in seconds.") var cooldownS: Int?
    @Option(help: "Only change the trigger if its ETag is still this, e.g. '\"v3\"' (default: the version read just before).")
    var ifMatch: String?
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        let flagsGiven = name != nil || description != nil || labels != nil || devices != nil || !condition.isEmpty || cooldownS != nil
        if file != nil {
            guard !flagsGiven else { throw ValidationError("--file gives the whole patch; drop the other trigger flags") }
            return
        }
        guard flagsGiven else { throw ValidationError("nothing to change: give --name, --labels, a condition flag, --cooldown-s or --file") }
        if labels != nil && devices != nil { throw ValidationError("--labels and --devices exclude each other") }
    }

    func run() throws {
        let file = self.file
        try TriggerPatcher(id: id, ifMatch: ifMatch, connection: connection, output: output).send { current in
            if let file {
                return try requestBody(file: file)
            }
            let selector: DomainRequest.Selector? = labels != nil || devices != nil ? .init(labels: labels?.labels, deviceIDs: devices?.ids) : nil
            return try WireJSON.encode(TriggerPatch(
                name: name, description: description, selector: selector,
                condition: condition.isEmpty ? nil : try condition.condition(over: current.spec.condition), cooldownS: cooldownS))
        }
    }
}

struct TriggersEnable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable", abstract: "Enable a trigger: it is evaluated again.")

    @Argument(help: "The trigger's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try TriggerPatcher(id: id, connection: connection, output: output).send { _ in try WireJSON.encode(TriggerPatch(enabled: true)) }
    }
}

struct TriggersDisable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable a trigger: it is not evaluated until enabled.")

    @Argument(help: "The trigger's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try TriggerPatcher(id: id, connection: connection, output: output).send { _ in try WireJSON.encode(TriggerPatch(enabled: false)) }
    }
}

struct TriggersDelete: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a trigger; the domains it created keep their origin.")

    @Argument(help: "The trigger's id.") var id: ResourceID
    @Option(help: "Only if the trigger's ETag is still this, e.g. '\"v3\"'.") var ifMatch: String?
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            _ = try connection.client().exchange("DELETE", "/v1/triggers/\(id)", headers: ifMatch.map { ["If-Match": $0] } ?? [:], attempts: 1)
            print("Trigger \(id) deleted.")
        }
    }
}
