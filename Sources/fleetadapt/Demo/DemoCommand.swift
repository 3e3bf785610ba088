import ArgumentParser
import CommandSupport
import Foundation
import Learning

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a whole fleet adaptation on this machine: coordinator, real agent processes, a target domain.",
        discussion: HelpText.reflow("""
            Starts the coordinator on its embedded PostgreSQL, trains (or reuses) a base model and publishes it,
            writes corrupted camera frames (PNG files in a spool each agent watches) for --agents devices of
            four hardware classes, starts one real fleetadapt-agent process per device, posts the target domain, shows the campaign's progress, and
            ends with a table per device. It stops everything it started.

            Hardware classes are simulated: jetson-tx2 (7.5 W, slowdown 1), raspberry-pi-4 (4 W, slowdown 2),
            phone (3 W, slowdown 3), smart-camera (1.5 W, slowdown 30). The slowdown factor makes an agent's work
            take that many times as long, standing in for slower hardware on one machine; each class declares
            this machine's measured GFLOP/s divided by its slowdown, and a latency budget of 1.3, 0.75, 0.55 and
            0.3 times the full network's latency on it, so the planner gives the slower classes smaller
            combinations. Smart cameras also have a wired edge server (1,000 Mbit/s and 0.1 ms declared, plus
            the HTTP round trip their agent measures; this machine's speed): the demo starts `fleetadapt-edge`,
            the planner may cut a camera's network there, and that camera's agent then measures its latency
            split (its prefix here, the suffix on the edge server, the declared link simulated on top).

            Every agent also serves predictions (`--serve` on --edge-port + 1, + 2, ...): before the domain is
            posted and after its campaign, each device's application asks its agent about 32 held-out frames of its
            corrupted stream, and a second table shows the accuracy and entropy of what was served before and after
            adaptation and the served latency split (device / link / edge).

            With --onnx, the fleet runs on your own classifier: the demo builds its package from the ONNX file and
            your images (as `model build --onnx` does, sized for a demo), and each device holds its share of
            --device-images (your target domain) as image files, preprocessed as the package declares:
              fleetadapt demo --onnx model.onnx --source-images source/ --val-images val/ --device-images target/ \
                  --input 3x32x32 --resize 36 --crop 32 --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353
            """))

    @Option(help: "Number of agents (devices); the hardware classes take turns.")
    var agents: Int = 8

    @OptionGroup var domain: TargetDomainOptions

    @OptionGroup var imported: DemoImportOptions

    @Option(help: "Adaptation steps per device.")
    var steps: Int = 40

    @Option(help: "Unsupervised loss: tent, shot-im, eata or bn-stats.")
    var loss: AdaptationLoss = .shotIM

    @Option(help: "Working directory (base model, device data, coordinator data); reused across runs.")
    var workDir: String = NSTemporaryDirectory() + "fleetadapt-demo"

    @Option(help: "Coordinator port.")
    var port: Int = 8089

    @Option(help: "Edge server port.")
    var edgePort: Int = 8090

    func validate() throws {
        guard (1...30).contains(agents) else { throw ValidationError("--agents must be 1–30") }
        guard steps > 0 else { throw ValidationError("--steps must be positive") }
    }

    func run() throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let fleet = DemoFleet(settings: .init(agents: agents, corruption: domain.corruption, severity: domain.severity, steps: steps,
                                              loss: loss, workDir: workDir, port: port, edgePort: edgePort, imported: try imported.imported()),
                              executableDirectory: bin)
        defer { fleet.children.stopAll() }
        try fleet.checkPorts()
        try fleet.ensurePackage()
        try fleet.startCoordinator()
        try fleet.startEdge()
        let model = try fleet.publish()
        try fleet.startAgents()
        try fleet.waitForContexts()
        fleet.askServices(after: false)
        let campaign = try fleet.postDomain(model: model)
        let status = try fleet.follow(campaign: campaign)
        fleet.askServices(after: true)
        fleet.printReport(status: status)
        fleet.stop()
    }
}
