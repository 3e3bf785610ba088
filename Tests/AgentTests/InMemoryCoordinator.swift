@testable import Agent
import FleetAPI
import FleetClient
import Foundation
import Synchronization

/// The coordinator's side of the agent's seam (`AgentCoordinator`), held in memory: a queue of jobs to lease, a
/// record of every call in the order it came, and an outage switch. It keeps the client's retry contract — a call
/// under `.untilAnswered` checks `shouldStop` first, then tries until the coordinator is back (one `onFailure` line
/// per failed try); a call with a number of attempts throws when the coordinator is away — so the loop's decisions
/// are tested against the contract the real `CoordinatorClient` keeps (that one is tested in FleetClientTests).
final class InMemoryCoordinator: AgentCoordinator {
    enum Call: Sendable, Equatable {
        case context(DeviceContext)
        case lease(job: UUID?)
        case heartbeat(job: UUID, attempt: Int, progress: [String: Double])
        case artifact(job: UUID, attempt: Int, bytes: Data)
        case result(job: UUID, result: JobResult)
        case config
        case adapter(domain: UUID)
        case restoreAdapters(job: UUID)
        case releasePlan(job: UUID, latencies: [[Double]])
        case package(model: UUID)
        case drift(DriftReport)
    }

    struct Record: Sendable {
        var call: Call
        var at: ContinuousClock.Instant
    }

    struct State: Sendable {
        var queue: [LeasedJob] = []
        var calls: [Record] = []
        var down = false
        /// Goes down at the first heartbeat that reports training steps done (mid-job: the delivery meets the outage).
        var downOnceTraining = false
        /// Run once, at the first heartbeat that reports training steps done (a test stopping the loop mid-job,
        /// from the loop's own heartbeat, whatever the machine's load).
        var onceTraining: (@Sendable () -> Void)?
        /// Jobs whose heartbeats are answered 409: the attempt no longer holds them.
        var lost: Set<UUID> = []
        var artifactAnswer: CoordinatorClient.ArtifactAnswer = .stored
        var configAnswer: CoordinatorClient.ConfigAnswer = .noConfig
        var adapterAnswer: CoordinatorClient.AdapterAnswer = .missing(status: 404)
        /// The job's state the coordinator answers a result with (`rejected`: the result failed its quality gate).
        var resultState: JobState = .succeeded
        /// What a restore job's adapter download answers.
        var restoreAnswer: CoordinatorClient.AdapterAnswer = .missing(status: 404)
        /// What a profile job's plan request answers (a plain profile job by default).
        var releasePlanAnswer: CoordinatorClient.ReleasePlanAnswer = .notARelease
    }

    let state = Mutex(State())
    /// The model package `packageFile` hands out (a file the test built).
    let packagePath: String

    init(packagePath: String) {
        self.packagePath = packagePath
    }

    func enqueue(_ job: LeasedJob) { state.withLock { $0.queue.append(job) } }
    func setDown(_ down: Bool) { state.withLock { $0.down = down } }
    func change(_ body: (inout State) -> Void) { state.withLock { body(&$0) } }
    var calls: [Call] { state.withLock { $0.calls.map(\.call) } }
    var records: [Record] { state.withLock { $0.calls } }

    /// One call: `body` answers it (and names the call to record, nil for none) when the coordinator is up; when it
    /// is down, the call is retried or failed as the client would.
    private func answer<T: Sendable>(_ name: String, retry: CoordinatorClient.Retry, _ body: (inout State) throws -> (Call?, T)) throws -> T {
        func attempt() throws -> T? {
            try state.withLock { state in
                guard !state.down else { return nil }
                let (call, value) = try body(&state)
                if let call { state.calls.append(Record(call: call, at: .now)) }
                return value
            }
        }
        switch retry {
        case .attempts(let n):
            guard let value = try attempt() else {
                throw CoordinatorClient.Failure(description: "\(name) failed after \(n) attempts: connection refused", cause: "connection refused")
            }
            return value
        case .untilAnswered(_, let shouldStop, let onFailure):
            var failures = 0
            while true {
                if shouldStop() { throw CoordinatorClient.Failure(description: "stopped") }
                if let value = try attempt() { return value }
                failures += 1
                onFailure("agent: \(name) failed (\(failures) in a row), next try in 0.0 s: connection refused")
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
    }

    func reportContext(_ context: DeviceContext, retry: CoordinatorClient.Retry) throws {
        try answer("PUT /v1/agent/context", retry: retry) { _ in (.context(context), ()) }
    }

    /// Hands out the next queued job at once, else waits up to `wait` seconds for one (returning early when the
    /// agent is stopped meanwhile).
    func leaseNext(wait: Int, retry: CoordinatorClient.Retry) throws -> CoordinatorClient.LeaseAnswer {
        let until = ContinuousClock.now + .seconds(wait)
        while true {
            let expired = ContinuousClock.now >= until
            let job: LeasedJob? = try answer("GET /v1/agent/jobs/next", retry: retry) { state in
                guard !state.queue.isEmpty else { return (expired ? .lease(job: nil) : nil, nil) }
                let job = state.queue.removeFirst()
                return (.lease(job: job.id), job)
            }
            if let job { return .job(job) }
            if expired { return .noJob }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    func heartbeat(job: UUID, attempt: Int, progress: [String: Double]?, attempts: Int) throws -> CoordinatorClient.HeartbeatAnswer {
        let hook: (@Sendable () -> Void)? = state.withLock { state in
            guard (progress?["step"] ?? 0) > 0 else { return nil }
            if state.downOnceTraining { state.down = true; state.downOnceTraining = false }
            let hook = state.onceTraining
            state.onceTraining = nil
            return hook
        }
        hook?()
        return try answer("POST /v1/agent/jobs/\(job)/heartbeat", retry: .attempts(attempts)) { state in
            (.heartbeat(job: job, attempt: attempt, progress: progress ?? [:]), state.lost.contains(job) ? .lost : .held)
        }
    }

    func uploadArtifact(job: UUID, attempt: Int, artifact: Data, retry: CoordinatorClient.Retry) throws -> CoordinatorClient.ArtifactAnswer {
        try answer("PUT /v1/agent/jobs/\(job)/artifact?attempt=\(attempt)", retry: retry) { state in
            (.artifact(job: job, attempt: attempt, bytes: artifact), state.artifactAnswer)
        }
    }

    func reportResult(job: UUID, result: JobResult, retry: CoordinatorClient.Retry) throws -> CoordinatorClient.ResultAnswer {
        try answer("POST /v1/agent/jobs/\(job)/result", retry: retry) { state in
            (.result(job: job, result: result),
             CoordinatorClient.ResultAnswer(status: 200, state: result.outcome == .succeeded ? state.resultState : .failed))
        }
    }

    func config(attempts: Int) throws -> CoordinatorClient.ConfigAnswer {
        try answer("GET /v1/agent/config", retry: .attempts(attempts)) { state in (.config, state.configAnswer) }
    }

    func domainAdapter(_ domain: UUID, attempts: Int) throws -> CoordinatorClient.AdapterAnswer {
        try answer("GET /v1/agent/domains/\(domain)/adapter", retry: .attempts(attempts)) { state in (.adapter(domain: domain), state.adapterAnswer) }
    }

    func restoreAdapters(job: UUID, attempts: Int) throws -> CoordinatorClient.AdapterAnswer {
        try answer("GET /v1/agent/jobs/\(job)/adapters", retry: .attempts(attempts)) { state in (.restoreAdapters(job: job), state.restoreAnswer) }
    }

    func releasePlan(job: UUID, attempt: Int, variantLatenciesMs: [[Double]], attempts: Int) throws -> CoordinatorClient.ReleasePlanAnswer {
        try answer("POST /v1/agent/jobs/\(job)/plan", retry: .attempts(attempts)) { state in
            (.releasePlan(job: job, latencies: variantLatenciesMs), state.releasePlanAnswer)
        }
    }

    /// Judged as the coordinator judges it (`DriftPolicy`).
    func reportDrift(_ report: DriftReport, attempts: Int) throws -> DeviceDrift {
        try answer("POST /v1/agent/drift", retry: .attempts(attempts)) { _ in
            (.drift(report), DeviceDrift(state: DriftPolicy.state(of: report), since: Date(), reportedAt: Date(), report: report))
        }
    }

    func packageFile(for id: UUID, cacheDirectory: String) throws -> String {
        try answer("GET /v1/models/\(id)/package", retry: .attempts(8)) { _ in (.package(model: id), packagePath) }
    }
}

extension InMemoryCoordinator.Call {
    var heartbeat: (job: UUID, progress: [String: Double])? {
        if case .heartbeat(let job, _, let progress) = self { return (job, progress) }
        return nil
    }

    var result: (job: UUID, result: JobResult)? {
        if case .result(let job, let result) = self { return (job, result) }
        return nil
    }

    var isContext: Bool {
        if case .context = self { return true }
        return false
    }

    var drift: DriftReport? {
        if case .drift(let report) = self { return report }
        return nil
    }

    var isArtifact: Bool {
        if case .artifact = self { return true }
        return false
    }

    /// The job a lease handed out (nil for none, and for other calls).
    var leased: UUID? {
        if case .lease(let job) = self { return job }
        return nil
    }
}
