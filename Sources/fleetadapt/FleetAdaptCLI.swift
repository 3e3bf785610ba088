import ArgumentParser
import CommandSupport

@main
struct FleetAdaptCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleetadapt",
        abstract: "FleetAdapt tools: the demo fleet, device data, base models, benchmarks.",
        discussion: """
            The coordinator itself is `fleetadapt-coordinator`; the device agent is `fleetadapt-agent`.
            Benchmarks print figures and ratios against a baseline measured in the same run, because
            shared machines are noisy: compare ratios, not absolute numbers, across machines.
            """,
        version: FleetAdaptVersion.line,
        subcommands: [DemoCommand.self, DataCommand.self, ModelCommand.self, BenchCommand.self])
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the system and print figures with same-run baselines.",
        subcommands: [BenchHTTPCommand.self, BenchQueueCommand.self, BenchPlanCommand.self, BenchTrainCommand.self, BenchAdaptCommand.self,
                      BenchExportCommand.self])
}
