import CoordinatorStore
import FleetAPI
import Foundation
import Learning
import PostgresClient

/// Fleet-level learning: the adapters that devices of one domain trained are averaged per tensor, weighted by
/// the samples each device trained on, into a domain adapter that devices unable to train can apply.
///
/// A device's weight is the samples it reports, bounded by what its job document allowed it to train on
/// (`ArtifactPolicy.sampleWeight`), and its artifact is re-checked against its job's combination before it is
/// folded in (artifacts are checked at upload already; this also covers artifacts stored before that check).
///
/// Incremental: each success folds its one artifact into the newest version (per tensor: (W·old + w·new) / (W + w)),
/// so a campaign of n devices costs O(n) in total, not O(n²). Per-tensor weights W travel in the adapter's
/// safetensors metadata (`weights`), because tensors belong to the variant a device ran: each is averaged over the
/// devices that ran it. Successes of one domain are serialised by an advisory lock, and each job is folded once
/// (the caller only aggregates on the transition to `succeeded`).
package struct AdapterAggregator: Sendable {
    package let pool: PostgresPool
    package let adapters: DomainAdapterStore
    package let artifacts: JobArtifactStore
    package let jobs: JobStore
    package let policy: ArtifactPolicy

    package init(stores: CoordinatorStores) {
        self.pool = stores.pool
        self.adapters = stores.domainAdapters
        self.jobs = stores.jobs
        self.artifacts = stores.artifacts
        self.policy = ArtifactPolicy(jobs: stores.jobs, models: stores.models, artifacts: stores.artifacts)
    }

    /// Folds the artifact of `job` into its domain's adapter; returns the new version, or nil when the job has
    /// no artifact (an `apply` job) or the artifact cannot be averaged.
    @discardableResult
    package func aggregate(afterJob job: UUID, now: Date) throws -> Int? {
        try pool.withTransaction { c in try aggregate(afterJob: job, now: now, on: c) }
    }

    /// The same inside the caller's transaction (the job's follow-ups: the fold and its outbox mark commit together).
    package func aggregate(afterJob job: UUID, now: Date, on c: PostgresConnection) throws -> Int? {
        guard let found = try artifacts.succeededAdaptation(job: job, on: c) else { return nil }
        let domain = found.domain
        try adapters.lock(domain: domain, on: c)
        guard let artifact = try? SafeTensors.decode(found.content).tensors, !artifact.isEmpty else { return nil }
        let document = try WireJSON.decode(JobDocument.self, from: found.document)
        let problems = try policy.problems(artifact, document: document, on: c)
        guard problems.isEmpty else {
            Log.error("job \(job.uuidString.lowercased())'s artifact is not folded into domain \(domain.uuidString.lowercased())'s adapter: \(problems.prefix(3).map { "\($0.field) \($0.message)" })")
            return nil
        }
        let w = Double(ArtifactPolicy.sampleWeight(reported: found.samples, document: document))

        var average = try WeightedTensorAverage()
        var version = 0, devices = 0, samples = 0
        if let latest = try adapters.newest(domain: domain, on: c) {
            version = latest.version
            devices = latest.deviceCount
            samples = latest.sampleCount
            let (tensors, meta) = try SafeTensors.decode(latest.content)
            let weights = meta["weights"].flatMap { try? WireJSON.decode([String: Double].self, from: $0) } ?? [:]
            average = try WeightedTensorAverage(tensors: tensors, weights: weights, defaultWeight: Double(samples))
        }
        // The whole artifact is refused if any tensor disagrees in shape with what was averaged so far (checked
        // artifacts of one model cannot; one domain has one campaign, so one model).
        guard average.fold(artifact, weight: w) else {
            Log.error("job \(job.uuidString.lowercased())'s artifact disagrees in shape with domain \(domain.uuidString.lowercased())'s adapter; not folded in")
            return nil
        }
        let bytes = SafeTensors.encode(average.tensors, metadata: [
            "devices": String(devices + 1), "samples": String(samples + Int(w)),
            "weights": try WireJSON.string(average.weights),
        ])
        try adapters.insert(domain: domain, version: version + 1, sha256: Secrets.sha256(bytes), content: bytes,
                            deviceCount: devices + 1, sampleCount: samples + Int(w), now: now, on: c)
        return version + 1
    }

    /// Whether `device` is a target of `domain`: it has a job in the domain's campaign.
    package func targets(domain: UUID, device: UUID) throws -> Bool {
        try jobs.hasJob(inDomain: domain, device: device)
    }

    /// The newest aggregated adapter of a domain: (version, sha256, bytes).
    package func latest(domain: UUID) throws -> (version: Int, sha256: [UInt8], content: [UInt8])? {
        try adapters.newest(domain: domain).map { ($0.version, $0.sha256, $0.content) }
    }

    /// Newest aggregated version per domain.
    package func latestVersions(_ domains: [UUID]) throws -> [UUID: Int] {
        try pool.withConnection { try latestVersions(domains, on: $0) }
    }

    package func latestVersions(_ domains: [UUID], on c: PostgresConnection) throws -> [UUID: Int] {
        try adapters.latestVersions(domains, on: c)
    }
}
