import ArgumentParser
import ElasticModel
import FleetAPI
import FleetClient
import CommandSupport
import Foundation
import ImageIO
import Learning

/// The demo fleet, step by step: a package, a coordinator on its embedded PostgreSQL, an edge server, devices with
/// their own corrupted data and agents, a target domain, its campaign. Every call to the coordinator is a typed
/// FleetClient call with FleetAPI values; `DemoCommand` only parses options and runs these steps in order.
final class DemoFleet {
    struct Settings {
        var agents: Int
        var corruption: Corruption
        var severity: Int
        var steps: Int
        var loss: AdaptationLoss
        var workDir: String
        var port: Int
        var edgePort: Int
        /// `--onnx`: your model and images instead of the built-in package and Fashion-MNIST.
        var imported: Imported? = nil
    }

    /// A simulated hardware class: power, slowdown, and the latency budget as a fraction of the full network's latency
    /// on that class (so the planner has to choose smaller combinations on the tighter ones).
    struct HardwareClass {
        var name: String
        var watts: Double
        var slowdown: Double
        var budget: Double
        var edge: Bool
    }

    static let classes = [
        HardwareClass(name: "jetson-tx2", watts: 7.5, slowdown: 1, budget: 1.3, edge: false),
        HardwareClass(name: "raspberry-pi-4", watts: 4, slowdown: 2, budget: 0.75, edge: false),
        HardwareClass(name: "phone", watts: 3, slowdown: 3, budget: 0.55, edge: false),
        HardwareClass(name: "smart-camera", watts: 1.5, slowdown: 30, budget: 0.3, edge: true),
    ]
    /// The cameras' link to the edge server: what their agents declare (and simulate on top of loopback).
    static let edgeLink = (bandwidthMbps: 1000.0, rttMs: 0.1)
    /// Images of the test split each device holds (disjoint slices).
    static let imagesPerDevice = 300
    /// Held-out frames per device that its application asks the agent's inference service about, before and after
    /// adaptation (disjoint from every device's local data: taken from the end of the test split).
    static let heldOutPerDevice = 32

    struct DemoDevice {
        var id: UUID
        var name: String
        var hardwareClass: String
        /// The agent's inference service (`--serve 127.0.0.1:port`).
        var servePort: Int
        /// The held-out stream of the device's camera: same corruption, frames it did not adapt on (none with
        /// `--onnx`, whose images are all the devices' own).
        var heldOut: LabeledImages?
    }

    let settings: Settings
    /// This run's admin key, given to the coordinator it starts.
    let key: String
    /// The label the devices of this run carry, so the domain selects them and no other.
    let run = UUID().uuidString.prefix(8).lowercased()
    let bin: String
    let admin: CoordinatorClient
    let children = ChildProcesses()
    var modelPath: String { settings.workDir + "/" + (settings.imported?.file ?? "fmnist-elastic.fap") }
    var coordinatorURL: String { "http://127.0.0.1:\(settings.port)" }
    var edgeURL: String { "http://127.0.0.1:\(settings.edgePort)" }
    private(set) var devices: [DemoDevice] = []
    /// Each device's agent process and its log, watched while the demo waits on them.
    private var agentProcesses: [(name: String, process: Process, log: String)] = []
    /// The configs the jobs are planned from (the table compares them with what the agents measured).
    private(set) var planned: [UUID: DeviceConfigView] = [:]
    /// What each device's application saw on its held-out stream before and after adaptation.
    private(set) var servedBefore: [UUID: ServedFigures] = [:]
    private(set) var servedAfter: [UUID: ServedFigures] = [:]

    init(settings: Settings, executableDirectory: String) {
        self.settings = settings
        bin = executableDirectory
        let key = "demo-" + UUID().uuidString
        self.key = key
        admin = CoordinatorClient(baseURL: "http://127.0.0.1:\(settings.port)", token: key)
    }

    /// 0. Every port this run listens on is free before anything starts: the coordinator's, the edge server's and
    /// one inference service per agent after it. A taken port is named with the option that moves it, instead of an
    /// agent that fails to start and a campaign that waits for it.
    func checkPorts() throws {
        let ports = [("--port", settings.port), ("--edge-port", settings.edgePort)]
            + (0..<settings.agents).map { ("--edge-port + \($0 + 1), agent \($0 + 1)'s inference service", settings.edgePort + 1 + $0) }
        for (what, port) in ports where !LoopbackPort.isFree(port) {
            throw ValidationError("port \(port) (\(what)) is in use or not allowed on 127.0.0.1; choose another --port or --edge-port")
        }
    }

    /// An agent that stopped while the demo needs it ends the run with its exit status and the end of its log.
    func checkAgents() throws {
        guard let dead = agentProcesses.first(where: { !$0.process.isRunning }) else { return }
        let log = (try? String(contentsOfFile: dead.log, encoding: .utf8)) ?? ""
        let tail = log.split(separator: "\n").suffix(5).map { "  " + $0 }.joined(separator: "\n")
        throw ValidationError("the agent of \(dead.name) stopped (exit status \(dead.process.terminationStatus)); its log \(dead.log) ends:\n\(tail)")
    }

    /// 1. The elastic package, reused when it still verifies (a package from an older format is rebuilt).
    func ensurePackage() throws {
        if let imported = settings.imported { return try ensureImportedPackage(imported) }
        try FileManager.default.createDirectory(atPath: settings.workDir, withIntermediateDirectories: true)
        guard (try? ElasticPackage.read(path: modelPath)) == nil else { return }
        say("building the elastic model package on clean Fashion-MNIST (once; reused next time)…")
        let train = try FashionMNIST.load(split: .train, limit: 12000)
        let architecture = Architecture.resnet(widths: [8, 16, 32], blocksPerStage: [1, 2, 2])
        let model = architecture.makeModel(seed: 1)
        let recipe = BaseModelRecipe(steps: 500, warmupSteps: 20, seed: 1)
        let bar = ProgressBar("train base model")
        recipe.train(model, on: train) { step, _ in bar.update(step + 1, of: recipe.steps) }
        var bars: [ElasticBuilder.Phase: ProgressBar] = [:]
        var options = ElasticBuilder.Options()
        options.distillationSteps = 80
        options.latencyRuns = 10
        options.calibrationCombinations = 12
        options.validationCombinations = 10
        let (package, _) = try ElasticBuilder.build(
            base: model, architecture: architecture, name: "fmnist-resnet-demo",
            baseInfo: .init(description: "resnet 8,16,32 × 1,2,2 trained by the demo", trainImages: 12000, trainSteps: recipe.steps),
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

    /// 2. The coordinator on its embedded PostgreSQL, with this run's admin key.
    func startCoordinator() throws {
        try children.start(bin + "/fleetadapt-coordinator",
                           ["serve", "--port", String(settings.port), "--data-dir", settings.workDir + "/coordinator"],
                           environment: ["FLEETADAPT_ADMIN_KEY": key])
        say("coordinator starting on \(coordinatorURL) (embedded PostgreSQL in \(settings.workDir)/coordinator)…")
        guard admin.waitUntil(tries: 120, every: 0.5, { try $0.ready() }) else {
            throw ValidationError("the coordinator did not become ready")
        }
    }

    /// 2b. The edge server the cameras may split their networks with.
    func startEdge() throws {
        try children.start(bin + "/fleetadapt-edge", ["--coordinator", coordinatorURL, "--port", String(settings.edgePort), "--quiet",
                                                      "--cache-dir", settings.workDir + "/edge-cache"])
        guard CoordinatorClient(baseURL: edgeURL, token: key).waitUntil(tries: 60, every: 0.25, { try $0.healthy() }) else {
            throw ValidationError("the edge server did not start on \(edgeURL)")
        }
        say("edge server on \(edgeURL)")
    }

    /// 3. Publishes the package (every device registered later is planned against it).
    func publish() throws -> UUID {
        let modelID: UUID
        do {
            modelID = try admin.publishModel(name: settings.imported?.name ?? "fmnist-resnet-demo", package: try Data(contentsOf: URL(fileURLWithPath: modelPath))).id
        } catch {
            throw ValidationError("model upload failed: \(error)")
        }
        say("published model \(modelID.uuidString.lowercased())")
        return modelID
    }

    /// 4. Devices, their local data, their agents. A class's GFLOP/s is this machine's measured throughput on the
    /// package divided by its slowdown, so the planner's predictions describe the simulated hardware.
    func startAgents() throws {
        let manifest = try ElasticPackage.read(path: modelPath).manifest
        let clean = settings.imported == nil ? try FashionMNIST.load(split: .test) : nil
        let n = Self.imagesPerDevice
        for i in 0..<settings.agents {
            let cls = Self.classes[i % Self.classes.count]
            let name = "\(cls.name)-\(i + 1)"
            let dataDir = settings.workDir + "/devices/\(name)"
            if let imported = settings.imported {
                try writeDeviceImages(imported, index: i, to: dataDir)
            } else if let clean {
                let data = try settings.corruption.apply(to: clean.subset((i * n)..<((i + 1) * n)), severity: settings.severity, seed: 7,
                                                         firstIndex: i * n)
                try writeFrames(data, classNames: manifest.classNames ?? FashionMNIST.classNames, to: dataDir)
            }
            let created: DeviceCreated
            do {
                created = try admin.registerDevice(DeviceRegistration(
                    name: name, hardware: Hardware(class: cls.name, gflops: manifest.reference.gflops / cls.slowdown, memoryMB: 2048),
                    constraints: Constraints(latencyBudgetMs: manifest.reference.fullNetworkLatencyMs * cls.slowdown * cls.budget,
                                             memoryBudgetMB: 256),
                    labels: ["demo": run]))
            } catch {
                throw ValidationError("registration failed: \(error)")
            }
            var heldOut: LabeledImages?
            if let clean {
                let end = clean.count - i * Self.heldOutPerDevice
                heldOut = try settings.corruption.apply(to: clean.subset((end - Self.heldOutPerDevice)..<end), severity: settings.severity, seed: 8,
                                                        firstIndex: end - Self.heldOutPerDevice)
            }
            let servePort = settings.edgePort + 1 + i
            devices.append(DemoDevice(id: created.device.id, name: name, hardwareClass: cls.name, servePort: servePort, heldOut: heldOut))
            // The device's token in a file only this user reads: never on a command line or in the agent's environment.
            let tokenFile = settings.workDir + "/tokens/\(name)"
            try ChildProcesses.writeSecret(created.token, to: tokenFile)
            var arguments = ["--coordinator", coordinatorURL, "--token-file", tokenFile, "--data-dir", dataDir, "--watch",
                             "--poll-wait", "5", "--slowdown", String(cls.slowdown),
                             "--power-watts", String(cls.watts), "--serve", "127.0.0.1:\(servePort)", "--config-poll-seconds", "1"]
            if cls.edge {
                arguments += ["--edge-server", "edge-1", "--edge-url", edgeURL, "--edge-server-gflops", String(manifest.reference.gflops),
                              "--bandwidth-mbps", String(Self.edgeLink.bandwidthMbps), "--rtt-ms", String(Self.edgeLink.rttMs)]
            }
            // Each agent's log (what it ran, measured and uploaded) goes to <work-dir>/logs/<device>.log.
            let log = settings.workDir + "/logs/\(name).log"
            agentProcesses.append((name, try children.start(bin + "/fleetadapt-agent", arguments, log: log), log))
        }
        say("\(settings.agents) agents running (\(Self.classes.map(\.name).joined(separator: ", ")))")
    }

    /// A device's camera frames as its application would leave them: one PNG per frame in the agent's spool (the
    /// `--data-dir` image folder it watches), in ImageFolder layout — `<label>-<class>/` subfolders, which sort in
    /// label order — so the agent can report accuracy (labels never train).
    func writeFrames(_ data: LabeledImages, classNames: [String], to dir: String) throws {
        try? FileManager.default.removeItem(atPath: dir)
        let size = data.channels * data.height * data.width
        // Zero-padded labels sort as numbers do, whatever the class names.
        let digits = String(max(classNames.count - 1, 0)).count
        func folder(_ label: Int) -> String {
            let number = String(repeating: "0", count: max(0, digits - String(label).count)) + String(label)
            let name = label < classNames.count ? classNames[label] : "class"
            return number + "-" + String(name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
        }
        for i in 0..<data.count {
            let folder = dir + "/" + (data.labels.map { folder($0[i]) } ?? "frames")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // The sample is CHW; a PNG is HWC (the same bytes for one channel).
            let chw = Array(data.images[(i * size)..<((i + 1) * size)])
            var hwc = chw
            if data.channels == 3 {
                for c in 0..<3 { for p in 0..<(data.height * data.width) { hwc[p * 3 + c] = chw[c * data.height * data.width + p] } }
            }
            let image = Image(width: data.width, height: data.height, channels: data.channels, pixels: hwc)
            try Data(try ImageEncoder.png(image)).write(to: URL(fileURLWithPath: folder + String(format: "/frame-%05d.png", i)))
        }
    }

    /// Jobs carry the combination planned when the domain is posted: waits until every agent has reported its context
    /// (battery, edge link), so that plan is the one its context calls for, and keeps those configs.
    func waitForContexts(seconds: Double = 60) throws {
        let deadline = Date().addingTimeInterval(seconds)
        var reported = 0
        while reported < devices.count && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.25)
            try checkAgents()
            reported = devices.filter { d in (try? admin.device(id: d.id))?.context != nil }.count
        }
        say("\(reported) of \(devices.count) agents reported their context")
        for d in devices { planned[d.id] = try? admin.deviceConfig(id: d.id) }
    }

    /// 4b. Each device's application asks its agent about the held-out stream, one frame per request: accuracy
    /// (the demo knows the labels; the agent does not), mean entropy and latency split of what was served.
    /// `after` waits until the agent serves a newer network than it did before (the one its job left); all of it
    /// within `seconds`, so a device whose job failed does not hold the demo up.
    func askServices(after: Bool, seconds: Double = 60) {
        guard devices.contains(where: { $0.heldOut != nil }) else { return }
        let deadline = Date().addingTimeInterval(seconds)
        for d in devices {
            guard let heldOut = d.heldOut else { continue }
            var figures: ServedFigures?
            while figures == nil && Date() < deadline {
                if let f = try? ServedFigures.measure(port: d.servePort, frames: heldOut),
                   !after || f.generation > (servedBefore[d.id]?.generation ?? 0) {
                    figures = f
                } else {
                    Thread.sleep(forTimeInterval: 0.5)
                }
            }
            if after { servedAfter[d.id] = figures } else { servedBefore[d.id] = figures }
        }
        let answered = devices.filter { (after ? servedAfter : servedBefore)[$0.id] != nil }.count
        say("\(answered) of \(devices.count) inference services answered the held-out stream \(after ? "after" : "before") adaptation")
    }

    /// 5. The target domain, rolled out to this run's devices.
    func postDomain(model: UUID) throws -> UUID {
        let campaignID: UUID
        do {
            campaignID = try admin.createDomain(DomainRequest(
                name: settings.imported.map { "\($0.name)-devices" } ?? "\(settings.corruption.rawValue)-\(settings.severity)", modelID: model, selector: .init(labels: ["demo": run]),
                rollout: .init(canaryPct: 17, waveSizePct: 34, successThresholdPct: 60),
                job: .init(loss: try JobLoss(named: settings.loss.rawValue, field: "--loss"), steps: settings.steps, timeoutS: 900, maxAttempts: 3, learningRate: 0.002,
                           batchSize: 32))).campaign.id
        } catch {
            throw ValidationError("POST /v1/domains failed: \(error)")
        }
        say("domain posted: campaign \(campaignID.uuidString.lowercased())")
        return campaignID
    }

    /// 6. The campaign's progress every 2 s until it leaves `running` (at most `seconds`); its last status. An agent
    /// that stopped meanwhile ends the demo (its jobs would never finish).
    func follow(campaign id: UUID, seconds: Double = 900) throws -> CampaignStatus {
        var status = CampaignStatus.running
        let started = Date()
        while status == .running && Date().timeIntervalSince(started) < seconds {
            Thread.sleep(forTimeInterval: 2)
            try checkAgents()
            guard let view = try? admin.campaign(id: id) else { continue }
            status = view.status
            let counts = view.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            say(String(format: "  %5.0f s  %@  wave %d/%d released  %@", Date().timeIntervalSince(started), status.rawValue as NSString,
                       view.releasedWave + 1, view.waveCount, counts as NSString))
        }
        return status
    }

    /// 7. Per device: the planned combination and its predicted latency, the latency the agent measured for that
    /// combination, and what adaptation changed; then the devices re-planned after their measurements.
    func printReport(status: CampaignStatus) {
        print("")
        print(DemoTable.header)
        for d in devices {
            let v = (try? admin.metrics(device: d.id, kind: "job.adapt"))?.items.last?.values ?? [:]
            print(DemoTable.row(device: d.name, planned: planned[d.id]?.decision, measured: v))
        }
        print("\ncampaign \(status.rawValue). pred = the planner's estimate for the device's combination (clean accuracy of the package's")
        print("estimator); meas = batch-1 latency the agent measured for that combination, adapters included; split = the block")
        print("after which the planner cut the network (— on-device), measured through the edge server with the same cut.")
        // With --onnx every image is a device's own: there is no held-out stream to serve, so no second table.
        if devices.contains(where: { $0.heldOut != nil }) {
            print("")
            print(ServedTable.header)
            for d in devices { print(ServedTable.row(device: d.name, before: servedBefore[d.id], after: servedAfter[d.id])) }
            print("\nserved = what each device's application saw asking its agent's inference service (POST /v1/predict, one frame per")
            print("request) about \(Self.heldOutPerDevice) held-out frames of its stream before and after adaptation; ms = mean device / link / edge time")
            print("of those answers after adaptation (link and edge: the split through the edge server).")
        }
        print("Agents' logs: \(settings.workDir)/logs/.")
        // Measurements feed back: a device whose measured round trip to the edge exceeded what it had reported
        // reports it, and the coordinator re-plans it.
        for d in devices {
            guard let before = planned[d.id], let after = try? admin.deviceConfig(id: d.id), after.version > before.version else { continue }
            // A new version that only records the domain's adapters changes none of this.
            let (was, now) = (DemoTable.describe(before.decision), DemoTable.describe(after.decision))
            guard was != now else { continue }
            print("\(d.name): re-planned after its measured edge round trip: \(was) → \(now)")
        }
    }

    func stop() {
        say("stopping agents and the coordinator…")
        children.stopAll()
    }

    func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}

/// The demo's closing table, one row per device.
enum DemoTable {
    static let header = "device              combination          split  pred ms  meas ms  pred acc  train s  energy mJ   accuracy before → after   entropy before → after"

    static func row(device: String, planned config: PlanDecision?, measured v: [String: Double]) -> String {
        let combination = config?.variants.map(\.variant).joined(separator: "/") ?? "—"
        let predicted = config?.predicted
        func f(_ k: String, _ fmt: String) -> String { v[k].map { String(format: fmt, $0) } ?? "—" }
        func p(_ value: Double?, _ fmt: String) -> String { value.map { String(format: fmt, $0) } ?? "—" }
        let plannedSplit = config?.partition.map { String($0.splitAfterBlock) } ?? "—"
        let measured = v["split_after_block"].map { String(Int($0)) } ?? "—"
        let split = plannedSplit == measured ? plannedSplit : "\(plannedSplit)≠\(measured)"
        return pad(device, 19) + " " + pad(combination, 20) + " " + pad(split, 5, left: true) + "  "
            + pad(p(predicted?.latencyMs, "%.2f"), 7, left: true) + "  "
            + pad(f("latency_ms", "%.2f"), 7, left: true) + "  " + pad(p(predicted?.accuracy, "%.3f"), 8, left: true) + "  "
            + pad(f("train_seconds", "%.1f"), 7, left: true) + "  " + pad(f("energy_mj", "%.0f"), 9, left: true) + "   "
            + pad(f("accuracy_before", "%.3f"), 6, left: true) + " → " + pad(f("accuracy_after", "%.3f"), 6) + "           "
            + pad(f("entropy_before", "%.2f"), 5, left: true) + " → " + f("entropy_after", "%.2f")
    }

    /// A decision in one line: combination, split, predicted latency and accuracy.
    static func describe(_ c: PlanDecision) -> String {
        let split = c.partition.map { "split \($0.splitAfterBlock)" } ?? "on-device"
        let combination = c.variants.map(\.variant).joined(separator: "/")
        return String(format: "%@ %@, pred %.2f ms, acc %.3f", combination as NSString, split as NSString, c.predicted.latencyMs,
                      c.predicted.accuracy)
    }

    static func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return left ? fill + s : s + fill
    }
}

/// What a device's application saw from the agent's inference service on a stream of frames.
struct ServedFigures {
    var accuracy: Double
    var entropy: Double
    var deviceMs: Double
    var linkMs: Double
    var edgeMs: Double
    var generation: Int
    var fallbacks: Int

    /// One POST /v1/predict per frame (the preprocessed tensor as safetensors); throws if one is not answered.
    static func measure(port: Int, frames: LabeledImages) throws -> ServedFigures {
        let connection = try ServeConnection(port: port)
        var correct = 0, fallbacks = 0, generation = 0
        var entropy = 0.0, device = 0.0, link = 0.0, edge = 0.0
        for i in 0..<frames.count {
            let x = frames.tensor([i])
            let r = try connection.exchange("POST", "/v1/predict?k=1", contentType: "application/octet-stream",
                                            body: SafeTensors.encode(["x": SafeTensor(floats: x.data, shape: x.shape)]))
            guard r.status == 200, let answer = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any],
                  let prediction = (answer["predictions"] as? [[String: Any]])?.first,
                  let top = (prediction["top_k"] as? [[String: Any]])?.first?["index"] as? Int,
                  let latency = answer["latency_ms"] as? [String: Double] else {
                throw ValidationError("predict answered \(r.status)")
            }
            if let labels = frames.labels, Int(labels[i]) == top { correct += 1 }
            entropy += prediction["entropy"] as? Double ?? 0
            device += latency["device"] ?? 0
            link += latency["link"] ?? 0
            edge += latency["edge"] ?? 0
            if answer["edge_fallback"] as? Bool == true { fallbacks += 1 }
            generation = answer["generation"] as? Int ?? generation
        }
        let n = Double(max(1, frames.count))
        return ServedFigures(accuracy: Double(correct) / n, entropy: entropy / n, deviceMs: device / n, linkMs: link / n, edgeMs: edge / n,
                             generation: generation, fallbacks: fallbacks)
    }
}

/// The demo's second table: what the devices' applications saw from their inference services.
enum ServedTable {
    static let header = "device              served acc before → after   served entropy before → after   served ms device / link / edge"

    static func row(device: String, before: ServedFigures?, after: ServedFigures?) -> String {
        func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "—" }
        let latency = after ?? before
        let ms = latency.map { String(format: "%.3f / %.3f / %.3f", $0.deviceMs, $0.linkMs, $0.edgeMs) + ($0.fallbacks > 0 ? " (\($0.fallbacks) fallbacks)" : "") } ?? "—"
        return DemoTable.pad(device, 19) + " " + DemoTable.pad(f(before?.accuracy, "%.3f"), 17, left: true) + " → " + DemoTable.pad(f(after?.accuracy, "%.3f"), 6)
            + "   " + DemoTable.pad(f(before?.entropy, "%.2f"), 21, left: true) + " → " + DemoTable.pad(f(after?.entropy, "%.2f"), 6) + "   " + ms
    }
}
