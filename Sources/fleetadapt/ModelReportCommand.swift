import ArgumentParser
import CommandSupport
import ElasticModel
import Foundation

struct ModelReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the accuracy–latency points of a package's whole space (CSV) and its Pareto frontier (SVG).",
        discussion: HelpText.reflow("""
            Every combination's estimated accuracy (the package's estimator) against its latency (sum of
            the reference profiles), the Pareto frontier, and two baselines: the same sparsity in every block
            (uniform width) and original-or-skip per block (depth only). Prints the best accuracy each reaches
            within 40 %, 60 % and 80 % of the full model's latency. Example:
              fleetadapt model report /tmp/fashion.fap --out-dir /tmp/report
            """))

    @OptionGroup var package: PackageFileArgument

    @Option(help: "Directory for space.csv and frontier.svg.")
    var outDir: String

    func run() throws {
        let report = ScalingReport(manifest: try package.read().manifest)
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        try report.csv.write(toFile: outDir + "/space.csv", atomically: true, encoding: .utf8)
        try report.svg.write(toFile: outDir + "/frontier.svg", atomically: true, encoding: .utf8)
        print(String(format: "%d combinations; full model %.3f ms (sum of reference profiles); Pareto frontier %d points",
                     report.points.count, report.fullLatencyMs, report.frontier.count))
        print("| latency budget | elastic space (best) | uniform width | depth only |")
        print("|---|---|---|---|")
        func cell(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "none fits" }
        for row in report.table() {
            print("| \(Int(row.budget * 100)) % (\(String(format: "%.3f", row.budget * report.fullLatencyMs)) ms) | \(cell(row.elastic)) | \(cell(row.uniform)) | \(cell(row.depthOnly)) |")
        }
        print("wrote \(outDir)/space.csv and \(outDir)/frontier.svg")
    }
}
