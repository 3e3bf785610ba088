@testable import Agent
import ElasticModel
import FleetAPI
import Foundation
import Learning
import Testing

/// What the agent's tests run on: one small elastic package built once per test process (real training, real
/// distillation, as FleetAdaptationTests builds its own), and devices' local data — corrupted Fashion-MNIST images
/// in a `LocalDataset` directory, as the end-to-end tests give the agent executable.
enum AgentFixture {
    static let packagePath: String = {
        let train = try! FashionMNIST.load(split: .train, limit: 2000)
        let architecture = Architecture.resnet(widths: [8, 16, 24], blocksPerStage: [1, 1, 1])
        let model = architecture.makeModel(seed: 3)
        let opt = Optimizer(model.store, kind: .sgd(momentum: 0.9, nesterov: true), learningRate: 0.05, weightDecay: 5e-4)
        Trainer.train(model, on: train, steps: 120, batchSize: 64, optimizer: opt, schedule: CosineSchedule(base: 0.05, total: 120, warmup: 10), seed: 2)
        var options = ElasticBuilder.Options()
        options.distillationSteps = 10
        options.latencyRuns = 2
        options.warmupRuns = 1
        options.calibrationCombinations = 2
        options.validationCombinations = 2
        let (package, _) = try! ElasticBuilder.build(
            base: model, architecture: architecture, name: "agent-test", baseInfo: .init(description: "test", trainImages: 2000, trainSteps: 120),
            distillation: train.subset(0..<128), validation: try! FashionMNIST.load(split: .test, limit: 100), options: options)
        let path = NSTemporaryDirectory() + "fleetadapt-agent-tests-\(getpid()).fap"
        try! Data(try! package.encode()).write(to: URL(fileURLWithPath: path))
        return path
    }()

    static let modelID = UUID()
    static let domainID = UUID()

    /// A device's data directory: 200 test images under a strong contrast corruption, labels kept (for reporting).
    static func deviceData(_ index: Int) throws -> String {
        let dir = NSTemporaryDirectory() + "fleetadapt-agent-tests-\(getpid())-\(index)-\(UUID().uuidString.prefix(6))"
        let clean = try FashionMNIST.load(split: .test).subset((index * 200)..<(index * 200 + 200))
        try LocalDataset.write(try Corruption.contrast.apply(to: clean, severity: 4, seed: 5, firstIndex: index * 200),
                               metadata: ["corruption": "contrast", "severity": "4"], to: dir)
        return dir
    }

    static func images(_ directory: String) throws -> LabeledImages { try LocalDataset.read(directory: directory).data }

    static func job(_ kind: JobKind = .adapt, loss: JobLoss = .tent, steps: Int = 30, attempt: Int = 1) -> LeasedJob {
        LeasedJob(id: UUID(), campaignID: UUID(), attempt: attempt, leaseExpiresAt: Date().addingTimeInterval(60),
                  document: JobDocument(kind: kind, modelID: modelID, domainID: domainID, domainName: "contrast", variants: [],
                                        loss: loss, steps: steps, learningRate: 0.002, batchSize: 32))
    }

    /// A configuration for a device whose data is in `data` (its state directory beside it), fast to test: a
    /// one-second poll, heartbeats every 50 ms, a short retry cap.
    static func configuration(data: String, slowdown: Double = 1, maxJobs: Int = 0) -> AgentConfiguration {
        var c = AgentConfiguration(coordinatorURL: "http://in-memory.invalid", token: "t", dataDirectory: data, cacheDirectory: data + "-cache",
                                   slowdown: slowdown, pollWait: 1, maxJobs: maxJobs, maxRetryDelay: 1)
        c.heartbeatInterval = 0.05
        return c
    }

    static func environment(_ client: InMemoryCoordinator, data: String, slowdown: Double = 1, edgeURL: String? = nil,
                            log: @escaping @Sendable (String) -> Void = { _ in }) -> JobEnvironment {
        var configuration = configuration(data: data, slowdown: slowdown)
        configuration.edgeURL = edgeURL
        return JobEnvironment(configuration: configuration, client: client,
                              latency: LatencyMeter(configuration: configuration, client: client, log: log), log: log)
    }
}

/// A log the agent writes and a test reads.
final class LogLines: Sendable {
    private let lines = Shared<[String]>([])
    var all: [String] { lines.value }
    var write: @Sendable (String) -> Void { { [lines] line in lines.update { $0.append(line) } } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}

/// A `JobLoop` running on its own thread (it blocks, as in the executable), and what `run()` returned.
final class RunningLoop: Sendable {
    let loop: JobLoop
    private let outcome = Shared<Result<Int, any Error>?>(nil)

    init(_ loop: JobLoop) {
        self.loop = loop
        Thread { [outcome] in outcome.set(Result { try loop.run() }) }.start()
    }

    /// Waits (bounded) for `run()` to return; nil if it did not in time.
    func finished(within seconds: Double = 300) async throws -> Int? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let result = outcome.value { return try result.get() }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}

/// Waits (bounded, generously: CI is slow) until `condition` holds.
func eventually(_ what: String, within seconds: Double = 300, _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting for \(what)")
    throw CancellationError()
}
