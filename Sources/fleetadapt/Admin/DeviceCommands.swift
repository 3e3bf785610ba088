import ArgumentParser
import FleetAPI
import FleetClient
import Foundation

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List, register, change and decommission devices.",
        subcommands: [DevicesList.self, DevicesGet.self, DevicesRegister.self, DevicesPatch.self, DevicesRotateToken.self,
                      DevicesConfig.self, DevicesDecommission.self])

    static let spec = TableSpec(
        columns: [Column("ID", "id", fixed: true), Column("NAME", "name"), Column("STATUS", "status"), Column("CLASS", "hardware.class"),
                  Column("LABELS", "labels"), Column("LAST SEEN", "last_seen_at")],
        extra: [Column("GFLOPS", "hardware.gflops"), Column("LATENCY MS", "constraints.latency_budget_ms"),
                Column("MEMORY MB", "constraints.memory_budget_mb"), Column("VERSION", "version"), Columns.created])
}

struct DevicesList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List devices, oldest first.")

    @Option(help: "Only devices with all these labels, e.g. site=berlin,tier=cam.")
    var labels: LabelSet?

    @Option(help: "Only devices in this status.")
    var status: Device.Status?

    @OptionGroup var paging: ListOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.list(try connection.client(), "/v1/devices", query: [("labels", labels?.description), ("status", status?.rawValue)],
                            paging: paging, output: output, spec: DevicesCommand.spec)
        }
    }
}

extension Device.Status: ExpressibleByArgument {}

struct DevicesGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one device.")

    @Argument(help: "The device's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("GET", "/v1/devices/\(id)"), output: output, spec: DevicesCommand.spec)
        }
    }
}

struct DevicesRegister: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Register a device; prints its token once.",
        discussion: "Give the device with flags, or as the JSON body of POST /v1/devices with --file (see docs/api.md).")

    @Option(help: "A JSON file with the whole registration (`-` reads standard input); the other device flags are then not allowed.")
    var file: String?
    @Option(help: "The device's name.") var name: String?
    @Option(help: "Its hardware class, e.g. raspberry-pi-4.") var hardwareClass: String?
    @Option(help: "Its compute throughput in GFLOP/s.") var gflops: Double?
    @Option(help: "Its memory in MB.") var memoryMb: Int?
    @Option(help: "Latency budget per inference in ms.") var latencyBudgetMs: Double?
    @Option(help: "Memory budget for the model in MB.") var memoryBudgetMb: Double?
    @Option(help: "Energy budget per inference in mJ.") var energyBudgetMj: Double?
    @Option(help: "Labels, e.g. site=berlin,tier=cam.") var labels: LabelSet?
    @Option(help: "Idempotency-Key of the request (default: a new one), so that a repeat returns the same device.")
    var idempotencyKey: String?
    @OptionGroup var secret: SecretOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        let flags: [Any?] = [name, hardwareClass, gflops, memoryMb, latencyBudgetMs, memoryBudgetMb, energyBudgetMj, labels]
        if file != nil {
            guard flags.allSatisfy({ $0 == nil }) else { throw ValidationError("--file gives the whole registration; drop the other device flags") }
            return
        }
        var missing: [String] = []
        if name == nil { missing.append("--name") }
        if hardwareClass == nil { missing.append("--hardware-class") }
        if gflops == nil { missing.append("--gflops") }
        if memoryMb == nil { missing.append("--memory-mb") }
        if latencyBudgetMs == nil { missing.append("--latency-budget-ms") }
        if memoryBudgetMb == nil { missing.append("--memory-budget-mb") }
        guard missing.isEmpty else { throw ValidationError("missing \(missing.joined(separator: ", ")) (or give --file)") }
    }

    func run() throws {
        try AdminExit.guarding {
            let body: Data
            if let file {
                body = try requestBody(file: file)
            } else {
                body = try WireJSON.encode(DeviceRegistration(
                    name: name!, hardware: Hardware(class: hardwareClass!, gflops: gflops!, memoryMB: memoryMb!),
                    constraints: Constraints(latencyBudgetMs: latencyBudgetMs!, memoryBudgetMB: memoryBudgetMb!, energyBudgetMJ: energyBudgetMj),
                    labels: labels?.labels))
            }
            let r = try connection.client().exchange("POST", "/v1/devices", body: body, headers: idempotencyHeaders(idempotencyKey))
            try secret.emit(r, member: "device", output: output, spec: DevicesCommand.spec, label: "Device token")
        }
    }
}

struct DevicesPatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patch",
        abstract: "Change a device's name or labels.",
        discussion: "The change is sent with If-Match: the device's version as read just before (or --if-match), so a device changed in between is refused (exit 4) rather than overwritten. --labels replaces the whole label set.")

    @Argument(help: "The device's id.") var id: ResourceID
    @Option(help: "The new name.") var name: String?
    @Option(help: "The new labels (all of them), e.g. site=berlin,tier=cam.") var labels: LabelSet?
    @Option(help: "Only change the device if its ETag is still this, e.g. '\"v3\"' (default: the version read just before).")
    var ifMatch: String?
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if name == nil && labels == nil { throw ValidationError("nothing to change: give --name or --labels") }
    }

    func run() throws {
        try AdminExit.guarding {
            let client = try connection.client()
            let tag: String
            if let ifMatch { tag = ifMatch } else {
                let read = try client.exchange("GET", "/v1/devices/\(id)")
                guard let etag = read.headers["etag"] else { throw ValidationError("GET /v1/devices/\(id) answered no ETag") }
                tag = etag
            }
            let body = try WireJSON.encode(DevicePatch(name: name, labels: labels?.labels))
            let r = try client.exchange("PATCH", "/v1/devices/\(id)", body: body, headers: ["If-Match": tag], attempts: 1)
            try Lister.show(r, output: output, spec: DevicesCommand.spec)
        }
    }
}

struct DevicesRotateToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-token", abstract: "Give a device a new token (printed once); the old one stops working at once.")

    @Argument(help: "The device's id.") var id: ResourceID
    @OptionGroup var secret: SecretOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            let r = try connection.client().exchange("POST", "/v1/devices/\(id)/token", attempts: 1)
            try secret.emit(r, member: nil, output: output, spec: TableSpec(columns: [Column("DEVICE", fixed: true) { _ in id.description }]),
                            label: "Device token")
        }
    }
}

struct DevicesConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Show a device's current config: its planned combination and why.")

    @Argument(help: "The device's id.") var id: ResourceID
    @OptionGroup var output: OutputOptions
    @OptionGroup var connection: ConnectionOptions

    static let spec = TableSpec(
        columns: [Column("VERSION", "version"), Column("MODEL", "model_id", fixed: true),
                  Column("COMBINATION") { $0["variants"].items.map { $0["variant"].cell }.joined(separator: "/") },
                  Column("SPLIT") { $0["partition"]["split_after_block"].cell }, Column("PRED MS", "predicted.latency_ms"),
                  Column("PRED ACC", "predicted.accuracy"), Column("TRIGGER", "trigger")],
        extra: [Column("FEASIBLE", "feasible"), Column("LATENCY FROM", "latency_source"), Column("REASON", "reason"), Columns.created])

    func run() throws {
        try AdminExit.guarding {
            try Lister.show(try connection.client().exchange("GET", "/v1/devices/\(id)/config"), output: output, spec: Self.spec)
        }
    }
}

struct DevicesDecommission: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decommission", abstract: "Decommission a device (DELETE): its token stops working; its history stays.",
        aliases: ["delete"])

    @Argument(help: "The device's id.") var id: ResourceID
    @Option(help: "Only if the device's ETag is still this, e.g. '\"v3\"'.") var ifMatch: String?
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try AdminExit.guarding {
            _ = try connection.client().exchange("DELETE", "/v1/devices/\(id)", headers: ifMatch.map { ["If-Match": $0] } ?? [:], attempts: 1)
            print("Device \(id) decommissioned.")
        }
    }
}
