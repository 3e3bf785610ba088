import ArgumentParser
import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a whole fleet adaptation on this machine: coordinator, real agent processes, a target domain.",
        discussion: """
            Starts the coordinator on its embedded PostgreSQL, trains (or reuses) a base model and publishes it,
            writes corrupted local data for --agents devices of four hardware classes, starts one real
            fleetadapt-agent process per device, posts the target domain, shows the campaign's progress, and
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
            """)

    @Option(help: "Number of agents (devices); the hardware classes take turns.")
    var agents: Int = 8

    @Option(help: "Target-domain corruption.")
    var corruption: String = "fog"

    @Option(help: "Corruption severity 1–5.")
    var severity: Int = 4

    @Option(help: "Adaptation steps per device.")
    var steps: Int = 40

    @Option(help: "Unsupervised loss: tent, shot-im, eata or bn-stats.")
    var loss: String = "shot-im"

    @Option(help: "Working directory (base model, device data, coordinator data); reused across runs.")
    var workDir: String = NSTemporaryDirectory() + "fleetadapt-demo"

    @Option(help: "Coordinator port.")
    var port: Int = 8089

    @Option(help: "Edge server port.")
    var edgePort: Int = 8090

    func validate() throws {
        guard (1...30).contains(agents) else { throw ValidationError("--agents must be 1–30") }
        guard Corruption(rawValue: corruption) != nil else { throw ValidationError("unknown corruption \(corruption)") }
        guard (1...5).contains(severity), steps > 0 else { throw ValidationError("--severity 1–5, --steps > 0") }
    }

    /// Simulated classes: power, slowdown, and the latency budget as a fraction of the full network's latency on
    /// that class (so the planner has to choose smaller combinations on the tighter ones).
    static let classes: [(name: String, watts: Double, slowdown: Double, budget: Double, edge: Bool)] = [
        ("jetson-tx2", 7.5, 1, 1.3, false), ("raspberry-pi-4", 4, 2, 0.75, false), ("phone", 3, 3, 0.55, false),
        ("smart-camera", 1.5, 30, 0.3, true),
    ]
    /// The cameras' link to the edge server: what their agents declare (and simulate on top of loopback).
    static let edgeLink = (bandwidthMbps: 1000.0, rttMs: 0.1)

    func run() throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let key = "demo-" + UUID().uuidString
        let base = "http://127.0.0.1:\(port)"
        let admin = CoordinatorClient(baseURL: base, token: key)
        var children: [Process] = []
        defer {
            for p in children.reversed() where p.isRunning { p.terminate() }
            for p in children.reversed() { Self.waitExit(p, seconds: 30) }
        }

        // 1. Elastic model package.
        let modelPath = workDir + "/fmnist-elastic.fap"
        // Reused when it still verifies (a package from an older format is rebuilt).
        if (try? ElasticPackage.read(path: modelPath)) == nil {
            say("building the elastic model package on clean Fashion-MNIST (once; reused next time)…")
            let train = try FashionMNIST.load(split: .train, limit: 12000)
            let architecture = Architecture.resnet(widths: [8, 16, 32], blocksPerStage: [1, 2, 2])
            let model = architecture.makeModel(seed: 1)
            let opt = Optimizer(model.store, kind: .sgd(momentum: 0.9, nesterov: true), learningRate: 0.05, weightDecay: 5e-4)
            let bar = ProgressBar("train base model")
            Trainer.train(model, on: train, steps: 500, batchSize: 64, optimizer: opt, schedule: CosineSchedule(base: 0.05, total: 500, warmup: 20),
                          seed: 1) { step, _ in bar.update(step + 1, of: 500) }
            var bars: [ElasticBuilder.Phase: ProgressBar] = [:]
            var options = ElasticBuilder.Options()
            options.distillationSteps = 80
            options.latencyRuns = 10
            options.calibrationCombinations = 12
            options.validationCombinations = 10
            let (package, _) = try ElasticBuilder.build(
                base: model, architecture: architecture, name: "fmnist-resnet-demo",
                baseInfo: .init(description: "resnet 8,16,32 × 1,2,2 trained by the demo", trainImages: 12000, trainSteps: 500),
                distillation: train.subset(0..<1024), validation: try FashionMNIST.load(split: .test, limit: 500), options: options) { phase, done, total in
                let b = bars[phase] ?? ProgressBar(phase.rawValue)
                bars[phase] = b
                b.update(done, of: total)
            }
            try Data(try package.encode()).write(to: URL(fileURLWithPath: modelPath))
            let m = package.manifest
            say(String(format: "package: %d combinations, base accuracy %.3f, estimator error %.3f (mean, %d random combinations)",
                       m.combinationCount, m.accuracy.baseAccuracy, m.accuracy.meanAbsError, m.accuracy.validation.count))
        }

        // 2. Coordinator on its embedded PostgreSQL.
        let coordinator = Process()
        coordinator.executableURL = URL(fileURLWithPath: bin + "/fleetadapt-coordinator")
        coordinator.arguments = ["serve", "--port", String(port), "--data-dir", workDir + "/coordinator"]
        var env = ProcessInfo.processInfo.environment
        env["FLEETADAPT_ADMIN_KEY"] = key
        coordinator.environment = env
        coordinator.standardOutput = FileHandle.nullDevice
        coordinator.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try coordinator.run()
        children.append(coordinator)
        say("coordinator starting on \(base) (embedded PostgreSQL in \(workDir)/coordinator)…")
        var ready = false
        for _ in 0..<120 where !ready {
            Thread.sleep(forTimeInterval: 0.5)
            ready = (try? admin.ready()) == true
        }
        guard ready else { throw ValidationError("the coordinator did not become ready") }

        // 2b. The edge server the phones may split their networks with.
        let edgeURL = "http://127.0.0.1:\(edgePort)"
        let edge = Process()
        edge.executableURL = URL(fileURLWithPath: bin + "/fleetadapt-edge")
        edge.arguments = ["--coordinator", base, "--port", String(edgePort), "--quiet", "--cache-dir", workDir + "/edge-cache"]
        edge.standardOutput = FileHandle.nullDevice
        edge.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try edge.run()
        children.append(edge)
        let edgeClient = CoordinatorClient(baseURL: edgeURL, token: key)
        var edgeReady = false
        for _ in 0..<60 where !edgeReady {
            Thread.sleep(forTimeInterval: 0.25)
            edgeReady = (try? edgeClient.healthy()) == true
        }
        guard edgeReady else { throw ValidationError("the edge server did not start on \(edgeURL)") }
        say("edge server on \(edgeURL)")

        // 3. Publish the model (every device registered later is planned against it).
        let modelID: UUID
        do {
            modelID = try admin.publishModel(name: "fmnist-resnet-demo", package: try Data(contentsOf: URL(fileURLWithPath: modelPath))).id
        } catch {
            throw ValidationError("model upload failed: \(error)")
        }
        say("published model \(modelID.uuidString.lowercased())")

        // 4. Devices, their local data, their agents. A class's GFLOP/s is this machine's measured throughput on
        // the package divided by its slowdown, so the planner's predictions describe the simulated hardware.
        let manifest = try ElasticPackage.read(path: modelPath).manifest
        let run = UUID().uuidString.prefix(8).lowercased()
        let clean = try FashionMNIST.load(split: .test)
        var devices: [(id: UUID, name: String, cls: String)] = []
        for i in 0..<agents {
            let cls = Self.classes[i % Self.classes.count]
            let name = "\(cls.name)-\(i + 1)"
            let dataDir = workDir + "/devices/\(name)"
            let n = 300
            let data = try Corruption(rawValue: corruption)!.apply(to: clean.subset((i * n)..<((i + 1) * n)), severity: severity, seed: 7, firstIndex: i * n)
            try LocalDataset.write(data, metadata: ["corruption": corruption, "severity": String(severity)], to: dataDir)
            let gflops = manifest.reference.gflops / cls.slowdown
            let budget = manifest.reference.fullNetworkLatencyMs * cls.slowdown * cls.budget
            let created: DeviceCreated
            do {
                created = try admin.registerDevice(DeviceRegistration(
                    name: name, hardware: Hardware(class: cls.name, gflops: gflops, memoryMB: 2048),
                    constraints: Constraints(latencyBudgetMs: budget, memoryBudgetMB: 256), labels: ["demo": String(run)]))
            } catch {
                throw ValidationError("registration failed: \(error)")
            }
            let token = created.token
            devices.append((created.device.id, name, cls.name))
            let agent = Process()
            agent.executableURL = URL(fileURLWithPath: bin + "/fleetadapt-agent")
            agent.arguments = ["--coordinator", base, "--data-dir", dataDir, "--poll-wait", "5", "--slowdown", String(cls.slowdown),
                               "--power-watts", String(cls.watts)]
            if cls.edge {
                agent.arguments! += ["--edge-server", "edge-1", "--edge-url", edgeURL, "--edge-server-gflops", String(manifest.reference.gflops),
                                     "--bandwidth-mbps", String(Self.edgeLink.bandwidthMbps), "--rtt-ms", String(Self.edgeLink.rttMs)]
            }
            var aenv = ProcessInfo.processInfo.environment
            aenv["FLEETADAPT_TOKEN"] = token
            agent.environment = aenv
            // Each agent's log (what it ran, measured and uploaded) goes to <work-dir>/logs/<device>.log.
            let logPath = workDir + "/logs/\(name).log"
            try FileManager.default.createDirectory(atPath: workDir + "/logs", withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            agent.standardOutput = FileHandle(forWritingAtPath: logPath)
            agent.standardError = FileHandle(forWritingAtPath: logPath)
            try agent.run()
            children.append(agent)
        }
        say("\(agents) agents running (\(Self.classes.map(\.name).joined(separator: ", ")))")
        // Jobs carry the combination planned when the domain is posted: wait until every agent has reported its
        // context (battery, edge link), so that plan is the one its context calls for.
        let contextDeadline = Date().addingTimeInterval(60)
        var reported = 0
        while reported < devices.count && Date() < contextDeadline {
            Thread.sleep(forTimeInterval: 0.25)
            reported = devices.filter { d in (try? admin.device(id: d.id))?.context != nil }.count
        }
        say("\(reported) of \(devices.count) agents reported their context")
        // The configs the jobs are planned from (the table compares them with what the agents measured).
        var planned: [UUID: DeviceConfigView] = [:]
        for d in devices {
            planned[d.id] = try? admin.deviceConfig(id: d.id)
        }

        // 5. The target domain.
        let campaignID: UUID
        do {
            campaignID = try admin.createDomain(DomainRequest(
                name: "\(corruption)-\(severity)", modelID: modelID, selector: .init(labels: ["demo": String(run)]),
                rollout: .init(canaryPct: 17, waveSizePct: 34, successThresholdPct: 60),
                job: .init(loss: try JobLoss(named: loss, field: "--loss"), steps: steps, timeoutS: 900, maxAttempts: 3, learningRate: 0.002, batchSize: 32))).campaign.id
        } catch {
            throw ValidationError("POST /v1/domains failed: \(error)")
        }
        say("domain posted: campaign \(campaignID.uuidString.lowercased())")

        // 6. Progress.
        var status = "running"
        let started = Date()
        while status == "running" && Date().timeIntervalSince(started) < 900 {
            Thread.sleep(forTimeInterval: 2)
            guard let view = try? admin.campaign(id: campaignID) else { continue }
            status = view.status.rawValue
            let counts = view.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            say(String(format: "  %5.0f s  %@  wave %d/%d released  %@", Date().timeIntervalSince(started), status as NSString,
                       view.releasedWave + 1, view.waveCount, counts as NSString))
        }

        // 7. Per-device table: the planned combination and its predicted latency, the latency the agent measured
        // for that combination, and what adaptation changed.
        print("")
        print("device              combination          split  pred ms  meas ms  pred acc  train s  energy mJ   accuracy before → after   entropy before → after")
        for d in devices {
            let v = (try? admin.metrics(device: d.id, kind: "job.adapt"))?.items.last?.values ?? [:]
            let config = planned[d.id]?.decision
            let combination = config?.variants.map(\.variant).joined(separator: "/") ?? "—"
            let predicted = config?.predicted
            func f(_ k: String, _ fmt: String) -> String { v[k].map { String(format: fmt, $0) } ?? "—" }
            func p(_ value: Double?, _ fmt: String) -> String { value.map { String(format: fmt, $0) } ?? "—" }
            let plannedSplit = config?.partition.map { String($0.splitAfterBlock) } ?? "—"
            let measured = v["split_after_block"].map { String(Int($0)) } ?? "—"
            let split = plannedSplit == measured ? plannedSplit : "\(plannedSplit)≠\(measured)"
            print(pad(d.name, 19) + " " + pad(combination, 20) + " " + pad(split, 5, left: true) + "  " + pad(p(predicted?.latencyMs, "%.2f"), 7, left: true) + "  "
                  + pad(f("latency_ms", "%.2f"), 7, left: true) + "  " + pad(p(predicted?.accuracy, "%.3f"), 8, left: true) + "  "
                  + pad(f("train_seconds", "%.1f"), 7, left: true) + "  " + pad(f("energy_mj", "%.0f"), 9, left: true) + "   "
                  + pad(f("accuracy_before", "%.3f"), 6, left: true) + " → " + pad(f("accuracy_after", "%.3f"), 6) + "           "
                  + pad(f("entropy_before", "%.2f"), 5, left: true) + " → " + f("entropy_after", "%.2f"))
        }
        print("\ncampaign \(status). pred = the planner's estimate for the device's combination (clean accuracy of the package's")
        print("estimator); meas = batch-1 latency the agent measured for that combination, adapters included; split = the block")
        print("after which the planner cut the network (— on-device), measured through the edge server with the same cut.")
        print("Agents' logs: \(workDir)/logs/.")
        // Measurements feed back: a device whose measured round trip to the edge exceeded what it had reported
        // reports it, and the coordinator re-plans it.
        for d in devices {
            guard let before = planned[d.id], let after = try? admin.deviceConfig(id: d.id), after.version > before.version else { continue }
            func describe(_ c: DeviceConfigView) -> String {
                let split = c.decision.partition.map { "split \($0.splitAfterBlock)" } ?? "on-device"
                let combination = c.decision.variants.map(\.variant).joined(separator: "/")
                return String(format: "%@ %@, pred %.2f ms, acc %.3f", combination, split, c.decision.predicted.latencyMs, c.decision.predicted.accuracy)
            }
            // A new version that only records the domain's adapters changes none of this.
            guard describe(before) != describe(after) else { continue }
            print("\(d.name): re-planned after its measured edge round trip: \(describe(before)) → \(describe(after))")
        }
        say("stopping agents and the coordinator…")
    }

    func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return left ? fill + s : s + fill
    }

    func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    static func waitExit(_ p: Process, seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    }
}
