import CoordinatorStore
import FleetAPI
import Foundation
import Learning

/// An attempt's adapter weights arriving: a safetensors file whose SHA-256 the agent stated, checked against what
/// its job allows (`ArtifactPolicy`, decided from the job, never from the upload), then stored while the attempt
/// still holds the job (`JobArtifactStore.upload`).
package struct ArtifactUpload: Sendable {
    package let policy: ArtifactPolicy
    package let artifacts: JobArtifactStore

    package init(policy: ArtifactPolicy, artifacts: JobArtifactStore) {
        self.policy = policy
        self.artifacts = artifacts
    }

    package enum Outcome: Equatable {
        case stored
        /// The job is this device's, but that attempt no longer holds it.
        case staleAttempt
        /// No such job for this device.
        case notFound
    }

    /// Why the bytes are refused before anything is stored.
    package enum Refusal: Error, Equatable {
        case emptyBody
        /// The body's SHA-256 differs from the stated one: altered or truncated on the way.
        case digestMismatch
        /// Not a safetensors file (the decoder's reason).
        case notSafetensors(String)
        /// Not one or more F32 tensors.
        case notF32
        /// Tensors the job does not allow.
        case policy(ArtifactRefusal)
    }

    /// - Throws: `Refusal` (nothing stored), or a database error.
    package func receive(job: UUID, device: UUID, attempt: Int, statedDigest: [UInt8], body: [UInt8], now: Date) throws -> Outcome {
        guard !body.isEmpty else { throw Refusal.emptyBody }
        guard Secrets.constantTimeEqual(Secrets.sha256(body), statedDigest) else { throw Refusal.digestMismatch }
        let tensors: [String: SafeTensor]
        do { tensors = try SafeTensors.decode(body).tensors } catch { throw Refusal.notSafetensors("\(error)") }
        guard !tensors.isEmpty, tensors.values.allSatisfy({ $0.dtype == .F32 }) else { throw Refusal.notF32 }
        // Checked against the job, not the upload: only the adapters and batch norms of the job's combination.
        guard let document = try policy.document(job: job, device: device) else { return .notFound }
        do { try policy.check(tensors, document: document) } catch let refusal as ArtifactRefusal { throw Refusal.policy(refusal) }
        switch try artifacts.upload(job: job, device: device, attempt: attempt, sha256: statedDigest, content: body, now: now) {
        case .stored: return .stored
        case .staleAttempt: return .staleAttempt
        case .notFound: return .notFound
        }
    }
}
