import CoordinatorStore
import FleetAPI
import Foundation

/// What a device may download for its `restore` job: exactly the adapter file the job document names, decided from
/// the coordinator's records, never from the request — the device's own earlier `adapt` artifact, or the aggregate
/// version of the domain it names — and only while an attempt of the job holds its lease. The bytes must still have
/// the digest the rollback pinned. Another device's job, another job kind, or an artifact that is not the device's
/// own reads as absent.
package struct RestoreDownload: Sendable {
    package let jobs: JobStore
    package let artifacts: JobArtifactStore
    package let domainAdapters: DomainAdapterStore

    package init(jobs: JobStore, artifacts: JobArtifactStore, domainAdapters: DomainAdapterStore) {
        self.jobs = jobs
        self.artifacts = artifacts
        self.domainAdapters = domainAdapters
    }

    package enum Outcome: Equatable {
        case adapters(content: [UInt8], sha256: [UInt8])
        /// No restore job of this device with that id.
        case notFound
        /// The job is the device's, but no attempt holds it now.
        case notHeld
        /// The job restores a config that runs no adapters: nothing to download (the agent drops its own).
        case none
        /// The adapters the job names are no longer stored (or changed): the agent's job fails, visibly.
        case unavailable(String)
    }

    package func download(job: UUID, device: UUID) throws -> Outcome {
        guard let (document, held) = try jobs.restoreJob(job, device: device), let target = document.restore else { return .notFound }
        guard held else { return .notHeld }
        guard let choice = target.adapters else { return .none }
        guard let pinned = target.sha256.flatMap(Secrets.fromHex) else {
            return .unavailable("the adapters of the restored config were not stored when the rollback ran")
        }
        let file: (sha256: [UInt8], content: [UInt8])?
        switch choice.source {
        case .local:
            file = try target.artifactJobID.flatMap { try artifacts.ownSucceededArtifact(job: $0, device: device) }
        case .aggregated:
            file = try choice.version.flatMap { try domainAdapters.version(domain: choice.domainID, version: $0) }.map { ($0.sha256, $0.content) }
        }
        guard let file else { return .unavailable("the adapters of the restored config are no longer stored") }
        guard file.sha256 == pinned else { return .unavailable("the stored adapters differ from those the rollback named") }
        return .adapters(content: file.content, sha256: file.sha256)
    }
}
