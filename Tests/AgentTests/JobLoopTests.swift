@testable import Agent
import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning
import ONNXExport
import Testing

/// The loop's decisions, in-process against the coordinator's side of the seam held in memory, with real jobs
/// (real training on real images) in between.
@Suite struct JobLoopTests {
    func setUp(slowdown: Double = 1, maxJobs: Int = 0) throws -> (InMemoryCoordinator, AgentConfiguration, LogLines) {
        let coordinator = InMemoryCoordinator(packagePath: AgentFixture.packagePath)
        let configuration = AgentFixture.configuration(data: try AgentFixture.deviceData(0), slowdown: slowdown, maxJobs: maxJobs)
        return (coordinator, configuration, LogLines())
    }

    func saved(_ configuration: AgentConfiguration) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: configuration.stateDirectory)) ?? []).sorted()
    }

    func heartbeats(_ coordinator: InMemoryCoordinator, of job: UUID) -> [[String: Double]] {
        coordinator.calls.compactMap(\.heartbeat).filter { $0.job == job }.map(\.progress)
    }

    func index(_ coordinator: InMemoryCoordinator, _ matches: (InMemoryCoordinator.Call) -> Bool) -> Int? {
        coordinator.calls.firstIndex(where: matches)
    }

    @Test func runsOneJobAtATimeAndItsHeartbeatsCarryRisingProgress() async throws {
        let (coordinator, configuration, log) = try setUp(slowdown: 3, maxJobs: 2)
        let first = AgentFixture.job(steps: 40), second = AgentFixture.job(steps: 40)
        coordinator.enqueue(first)
        coordinator.enqueue(second)
        let running = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write))
        #expect(try await running.finished() == 2, "\(log.all)")

        let calls = coordinator.calls
        guard case .context(let context)? = calls.first else { Issue.record("the context goes first: \(calls)"); return }
        #expect(context.freeMemoryMB ?? 0 > 0)
        // Job by job: lease, heartbeats, artifact, result; the second is leased only once the first is delivered.
        let lease1 = try #require(index(coordinator) { $0 == .lease(job: first.id) })
        let lease2 = try #require(index(coordinator) { $0 == .lease(job: second.id) })
        let artifact1 = try #require(index(coordinator) { if case .artifact(first.id, 1, _) = $0 { true } else { false } })
        let result1 = try #require(index(coordinator) { $0.result?.job == first.id })
        #expect(lease1 < artifact1 && artifact1 < result1 && result1 < lease2, "\(calls)")
        for (i, call) in calls.enumerated() {
            if case .heartbeat(let job, 1, _) = call {
                #expect(job == (i < lease2 ? first.id : second.id) && i > lease1, "heartbeat \(i) of \(job): \(calls)")
            }
        }
        for job in [first, second] {
            guard let result = calls.compactMap(\.result).first(where: { $0.job == job.id })?.result else {
                Issue.record("no result for \(job.id)")
                continue
            }
            #expect(result.outcome == .succeeded && result.metrics?.steps == 40, "\(result)")
        }

        // The heartbeats of one job report its training as it goes: steps done of the total, rising.
        let progress = heartbeats(coordinator, of: first.id)
        let steps = progress.compactMap { $0["step"] }
        // (Only the heartbeats that came before the job began have none.)
        #expect(progress.drop { $0.isEmpty }.allSatisfy { $0["total_steps"] == 40 }, "\(progress)")
        #expect(steps == steps.sorted(), "\(steps)")
        #expect(steps.contains { $0 > 0 && $0 < 40 } && Set(steps).count >= 2, "\(steps)")
        #expect(progress.last?["entropy_before"] ?? 0 > 0)

        // The cadence: no more often than the interval (the job's time in the coordinator's record, over 50 ms).
        let records = coordinator.records
        let duration = records[result1].at - records[lease1].at
        let expected = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        #expect(progress.count >= 2 && Double(progress.count) <= expected / configuration.heartbeatInterval + 2,
                "\(progress.count) heartbeats in \(expected) s")
        #expect(saved(configuration).isEmpty, "\(saved(configuration))")
    }

    @Test func aResultSavedDuringAnOutageIsDeliveredByTheNextStart() async throws {
        let (coordinator, configuration, log) = try setUp(slowdown: 2)
        let job = AgentFixture.job(steps: 30)
        coordinator.enqueue(job)
        coordinator.change { $0.downOnceTraining = true }
        let running = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write))
        // The coordinator goes while the job trains: heartbeats fail, the job goes on, and its delivery is retried.
        try await eventually("three failed deliveries") { log.all.filter { $0.contains("/artifact?attempt=1 failed") }.count >= 3 }
        #expect(saved(configuration).contains { $0.hasSuffix(".json") } && saved(configuration).contains { $0.hasSuffix(".artifact") },
                "\(saved(configuration))")
        running.loop.stop()
        #expect(try await running.finished(within: 60) == 0, "\(log.all)")
        #expect(!coordinator.calls.contains { $0.result != nil })
        let entry = try #require(PendingResults(directory: configuration.stateDirectory).all().first)
        #expect(entry.jobID == job.id && entry.result.outcome == .succeeded && entry.hasArtifact)
        let savedArtifact = try #require(PendingResults(directory: configuration.stateDirectory).artifact(of: entry))

        // A new start, the coordinator back: the saved result goes first (artifact, then result), before any lease.
        coordinator.setDown(false)
        let callsBefore = coordinator.calls.count
        let restartLog = LogLines()
        let restarted = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: restartLog.write))
        try await eventually("the saved result delivered") { coordinator.calls.contains { $0.result?.job == job.id } }
        restarted.loop.stop()
        #expect(try await restarted.finished(within: 60) == 0)
        let afterRestart = coordinator.calls.dropFirst(callsBefore)
        let kinds = afterRestart.prefix(3).map { call -> String in
            switch call {
            case .context: "context"
            case .artifact(job.id, 1, savedArtifact): "artifact"
            case .result(job.id, entry.result): "result"
            default: "\(call)"
            }
        }
        #expect(kinds == ["context", "artifact", "result"], "\(afterRestart)")
        #expect(restartLog.contains("delivering the saved result of job \(job.id.uuidString.lowercased())"))
        #expect(saved(configuration).isEmpty, "\(saved(configuration))")
    }

    @Test func itRetriesUntilTheCoordinatorAnswersAndThenWorks() async throws {
        let (coordinator, configuration, log) = try setUp(maxJobs: 1)
        coordinator.setDown(true)
        let job = AgentFixture.job(steps: 5)
        coordinator.enqueue(job)
        let running = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write))
        try await eventually("failed context reports") { log.contains("PUT /v1/agent/context failed (3 in a row)") }
        #expect(coordinator.calls.isEmpty)
        coordinator.setDown(false)
        #expect(try await running.finished() == 1, "\(log.all)")
        #expect(coordinator.calls.filter(\.isContext).count == 1)
        #expect(coordinator.calls.compactMap(\.result).contains { $0.job == job.id && $0.result.outcome == .succeeded })
    }

    @Test func stopFinishesTheJobInHand() async throws {
        let (coordinator, configuration, log) = try setUp(slowdown: 3)
        let job = AgentFixture.job(steps: 40)
        coordinator.enqueue(job)
        coordinator.enqueue(AgentFixture.job(steps: 40))
        // The stop comes from the job's first heartbeat that shows training under way, so it lands mid-job
        // however busy the machine is.
        let loop = JobLoop(configuration: configuration, client: coordinator, log: log.write)
        coordinator.change { $0.onceTraining = { loop.stop() } }
        let running = RunningLoop(loop)
        try await eventually("training under way") { heartbeats(coordinator, of: job.id).contains { ($0["step"] ?? 0) > 0 } }
        _ = try #require(try await running.finished())
        // The job in hand ran to its end (not abandoned mid-training), and no other was leased.
        #expect(coordinator.calls.compactMap(\.leased).count == 1, "\(coordinator.calls)")
        let delivered = coordinator.calls.compactMap(\.result).filter { $0.job == job.id }.map(\.result)
        let kept = try PendingResults(directory: configuration.stateDirectory).all().map(\.result)
        let finished = try #require((delivered + kept).first, "the result was neither delivered nor kept: \(log.all)")
        #expect(finished.outcome == .succeeded && finished.metrics?.steps == 40, "\(finished)")
        // Whatever stop left undelivered, the next start delivers.
        if delivered.isEmpty {
            coordinator.change { $0.queue.removeAll() }
            let restarted = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write))
            try await eventually("the kept result delivered") { coordinator.calls.contains { $0.result?.job == job.id } }
            restarted.loop.stop()
            _ = try await restarted.finished()
        }
        #expect(coordinator.calls.filter { $0.result?.job == job.id }.count == 1)
    }

    @Test func aLostLeaseDropsTheResult() async throws {
        let (coordinator, configuration, log) = try setUp(slowdown: 2, maxJobs: 1)
        let job = AgentFixture.job(steps: 20)
        coordinator.enqueue(job)
        coordinator.change { $0.lost = [job.id] }
        let running = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write))
        #expect(try await running.finished() == 1)
        #expect(log.contains("lease of job \(job.id.uuidString.lowercased()) was lost"), "\(log.all)")
        // One heartbeat learnt it; nothing was delivered nor kept.
        #expect(heartbeats(coordinator, of: job.id).count == 1)
        #expect(!coordinator.calls.contains { $0.result != nil || $0.isArtifact })
        #expect(saved(configuration).isEmpty)
    }

    /// An adapt result the coordinator rejects (its campaign's quality gate) leaves the device on what it ran: no
    /// `model.onnx` is written for it. One it accepts becomes the device's model, the export of the package with
    /// that job's artifact, byte for byte.
    @Test func aRejectedAdaptResultIsNotInstalledAndAnAcceptedOneIs() async throws {
        let (coordinator, configuration, log) = try setUp(maxJobs: 1)
        let path = CurrentModelFile.path(configuration)
        let rejected = AgentFixture.job(steps: 5)
        coordinator.enqueue(rejected)
        coordinator.change { $0.resultState = .rejected }
        #expect(try await RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write)).finished() == 1)
        #expect(coordinator.calls.compactMap(\.result).first { $0.job == rejected.id }?.result.outcome == .succeeded)
        #expect(!FileManager.default.fileExists(atPath: path), "a rejected result installs nothing")
        #expect(log.contains("job \(rejected.id.uuidString.lowercased()) ended rejected: its adapters are not installed"), "\(log.all)")

        let accepted = AgentFixture.job(steps: 5)
        coordinator.enqueue(accepted)
        coordinator.change { $0.resultState = .succeeded }
        #expect(try await RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write)).finished() == 1)
        let artifact = try #require(coordinator.calls.compactMap { call -> Data? in
            if case .artifact(accepted.id, _, let bytes) = call { bytes } else { nil }
        }.first)
        let export = try ModelExport(package: try ElasticPackage.read(path: AgentFixture.packagePath))
        try export.compose([:])
        try export.install(adapters: try SafeTensors.decode(Array(artifact)).tensors)
        #expect(Array(try #require(FileManager.default.contents(atPath: path))) == (try export.onnx()))
    }

    @Test func aRefusedArtifactTurnsTheResultIntoAFailureThatSaysWhy() async throws {
        let (coordinator, configuration, log) = try setUp(maxJobs: 1)
        let job = AgentFixture.job(steps: 5)
        coordinator.enqueue(job)
        coordinator.change { $0.artifactAnswer = .refused(status: 422, body: "adapter_rejected") }
        let running = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write))
        #expect(try await running.finished() == 1)
        let result = try #require(coordinator.calls.compactMap(\.result).first { $0.job == job.id }?.result)
        #expect(result.outcome == .failed && result.error == "artifact upload refused: HTTP 422 adapter_rejected", "\(result)")
        #expect(saved(configuration).isEmpty)
    }

    @Test func aJobThatCannotRunIsReportedAsAFailure() async throws {
        let (coordinator, configuration, log) = try setUp(maxJobs: 2)
        // An adapt job naming a loss the engine cannot train with ("none" is for measuring and applying jobs).
        let unknownLoss = AgentFixture.job(loss: .noTraining)
        let noAggregate = AgentFixture.job(.apply)
        coordinator.enqueue(unknownLoss)
        coordinator.enqueue(noAggregate)
        let running = RunningLoop(JobLoop(configuration: configuration, client: coordinator, log: log.write))
        #expect(try await running.finished() == 2)
        let results = coordinator.calls.compactMap(\.result)
        #expect(results.map { $0.job } == [unknownLoss.id, noAggregate.id])
        #expect(results.map { $0.result.outcome } == [.failed, .failed])
        #expect(results.map { $0.result.error } == ["unknown loss none", "no aggregated adapter for the domain yet (HTTP 404)"])
    }

    /// The loop, not the meter, decides to report a measured edge round trip: only when it is clearly worse than
    /// the one reported (by a fifth and 0.05 ms), with the declared link's round trip under it.
    @Test func anObservedEdgeRoundTripIsReportedOnlyWhenClearlyWorse() throws {
        let (coordinator, base, log) = try setUp()
        var configuration = base
        configuration.edgeURL = "http://127.0.0.1:9"
        configuration.context = DeviceContext(rttMs: 1)
        let loop = JobLoop(configuration: configuration, client: coordinator, log: log.write)
        loop.noteObservedEdgeRoundTrip(5)
        #expect(coordinator.calls.isEmpty, "nothing measured at start: nothing to compare with")
        loop.edgeRoundTripMs.set(2)
        loop.noteObservedEdgeRoundTrip(2.4)
        #expect(coordinator.calls.isEmpty)
        loop.noteObservedEdgeRoundTrip(3)
        guard case .context(let context)? = coordinator.calls.first, coordinator.calls.count == 1 else {
            Issue.record("\(coordinator.calls)")
            return
        }
        #expect(context.rttMs == 4)
        #expect(loop.edgeRoundTripMs.value == 3)
    }
}
