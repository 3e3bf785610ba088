import ArgumentParser
import CommandSupport

@main
struct FleetAdaptCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleetadapt",
        abstract: "FleetAdapt tools: the demo fleet, device data, base models, benchmarks, and the coordinator's admin commands.",
        discussion: HelpText.reflow("""
            The coordinator itself is `fleetadapt-coordinator`; the device agent is `fleetadapt-agent`. Benchmarks print figures and ratios against a baseline measured in the same run, because shared machines are noisy: compare ratios, not absolute numbers, across machines.

            The coordinator commands (login … audit) drive a running coordinator; `fleetadapt login` saves its URL and key. They exit 0 when done, 1 on other errors, 2 when a watched campaign does not complete, 3 when something is not found, 4 on a conflict or failed precondition, 5 when the key is refused or not allowed, and 64 on a usage error.
            """),
        version: FleetAdaptVersion.line,
        groupedSubcommands: [
            CommandGroup(name: "Tools", subcommands: [DemoCommand.self, DataCommand.self, ModelCommand.self, BenchCommand.self]),
            CommandGroup(name: "Coordinator", subcommands: [LoginCommand.self, LogoutCommand.self, DevicesCommand.self, ModelsCommand.self,
                                                            DomainsCommand.self, CampaignsCommand.self, ReleasesCommand.self, TriggersCommand.self,
                                                            KeysCommand.self, EnrolmentTokensCommand.self, AuditCommand.self]),
        ])
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the system and print figures with same-run baselines.",
        subcommands: [BenchHTTPCommand.self, BenchQueueCommand.self, BenchPlanCommand.self, BenchTrainCommand.self, BenchAdaptCommand.self,
                      BenchExportCommand.self, BenchServeCommand.self])
}
