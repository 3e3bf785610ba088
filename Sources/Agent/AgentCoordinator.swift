import FleetAPI
import FleetClient
import Foundation

/// The coordinator as the agent's loop and jobs use it: the device's calls of `CoordinatorClient`, and the model
/// package by id. The executable talks HTTP through `CoordinatorClient`; `Tests/AgentTests` runs the loop and the
/// jobs in-process against an implementation held in memory.
///
/// Retries are the client's: a call given `.untilAnswered` returns only once the coordinator answered (or throws
/// `CoordinatorClient.Failure("stopped")` when `shouldStop` says so), one given a number of attempts throws when
/// they are used up.
protocol AgentCoordinator: Sendable {
    func reportContext(_ context: DeviceContext, retry: CoordinatorClient.Retry) throws
    func leaseNext(wait: Int, retry: CoordinatorClient.Retry) throws -> CoordinatorClient.LeaseAnswer
    func heartbeat(job: UUID, attempt: Int, progress: [String: Double]?, attempts: Int) throws -> CoordinatorClient.HeartbeatAnswer
    func uploadArtifact(job: UUID, attempt: Int, artifact: Data, retry: CoordinatorClient.Retry) throws -> CoordinatorClient.ArtifactAnswer
    func reportResult(job: UUID, result: JobResult, retry: CoordinatorClient.Retry) throws -> CoordinatorClient.ResultAnswer
    func config(attempts: Int) throws -> CoordinatorClient.ConfigAnswer
    func domainAdapter(_ domain: UUID, attempts: Int) throws -> CoordinatorClient.AdapterAnswer
    /// The adapter file a `restore` job re-installs (only the one its document names).
    func restoreAdapters(job: UUID, attempts: Int) throws -> CoordinatorClient.AdapterAnswer
    /// The combination a release's `profile` job would move the device to, given the latencies it measured.
    func releasePlan(job: UUID, attempt: Int, variantLatenciesMs: [[Double]], attempts: Int) throws -> CoordinatorClient.ReleasePlanAnswer
    /// The drift window (`DriftReporter`); answers the state the coordinator keeps for the device.
    func reportDrift(_ report: DriftReport, attempts: Int) throws -> DeviceDrift
    /// The path of model `id`'s package on this device, downloaded into `cacheDirectory` when missing or changed.
    func packageFile(for id: UUID, cacheDirectory: String) throws -> String
}

extension CoordinatorClient: AgentCoordinator {
    /// Through `PackageCache`: kept by SHA-256, revalidated on every use, a download that mismatches its ETag refused.
    func packageFile(for id: UUID, cacheDirectory: String) throws -> String {
        try PackageCache(directory: cacheDirectory, client: self).file(for: id)
    }
}
