import CoordinatorStore
import ElasticModel
import FleetAPI
import Foundation
import Learning
import PostgresClient
import Synchronization

/// What a device may contribute to its domain's aggregated adapter, decided from its job, never from the upload:
/// only the adapter and batch-norm tensors of the combination its job document names, in the model's exact shapes,
/// with finite values; weighted by at most the samples the document let it train on; and a succeeded `adapt`
/// result only with its artifact. One device therefore cannot replace frozen weights, lock honest devices out with
/// a shape of its own, or outweigh the rest of the fleet by claiming a billion samples.
package struct ArtifactPolicy: Sendable {
    package let jobs: JobStore
    package let models: ModelStore
    package let artifacts: JobArtifactStore

    package init(jobs: JobStore, models: ModelStore, artifacts: JobArtifactStore) {
        self.jobs = jobs
        self.models = models
        self.artifacts = artifacts
    }

    /// Layouts by model id, shared by every request of the process: a model's package never changes under its id.
    package static let layouts = LayoutCache(capacity: 64)

    /// At most this many tensors are named in one refusal (the rest are summarised in `detail`).
    package static let maxListedErrors = 32

    /// The job document of a job of `device` (nil when the job is not this device's).
    package func document(job: UUID, device: UUID) throws -> JobDocument? {
        try jobs.document(job: job, device: device)
    }

    /// The adaptation layout of a model, from its stored manifest; nil when the model declares no elastic network.
    /// Reads on `c` when given (a caller inside a transaction must not wait for a second connection).
    package func layout(model: UUID, on c: PostgresConnection? = nil) throws -> AdaptationLayout? {
        if let cached = Self.layouts.get(model) { return cached }
        guard let text = try models.manifest(model, on: c),
              let manifest = try? WireJSON.decode(LayoutManifest.self, from: text),
              let kind = AdapterKind(rawValue: manifest.adapter.kind),
              let layout = try? AdaptationLayout(architecture: manifest.architecture, positions: manifest.blocks, adapterKind: kind) else {
            return nil
        }
        Self.layouts.put(model, layout)
        return layout
    }

    /// Name → shape of what an artifact of this job may hold; nil when the model has no layout or the document
    /// names a combination the model lacks.
    package func allowedTensors(_ document: JobDocument, on c: PostgresConnection? = nil) throws -> [String: [Int]]? {
        guard let layout = try layout(model: document.modelID, on: c) else { return nil }
        return try? layout.tensors(for: document.variants.isEmpty ? layout.originalCombination : document.variants)
    }

    /// One entry per tensor that the job does not allow (named `tensors.<name>`); empty when the artifact is acceptable.
    package func problems(_ tensors: [String: SafeTensor], document: JobDocument, on c: PostgresConnection? = nil) throws -> [ArtifactProblem] {
        guard document.kind == .adapt else {
            return [ArtifactProblem(field: "body", message: "a \(document.kind.rawValue) job trains nothing; only adapt jobs upload adapters")]
        }
        guard let allowed = try allowedTensors(document, on: c) else {
            return [ArtifactProblem(field: "body", message: "the job's model \(document.modelID.uuidString.lowercased()) declares no adapters for its combination")]
        }
        guard !tensors.isEmpty else { return [ArtifactProblem(field: "body", message: "must hold at least one tensor")] }
        var errors: [ArtifactProblem] = []
        for name in tensors.keys.sorted() {
            let t = tensors[name]!
            let field = "tensors.\(name)"
            guard let shape = allowed[name] else {
                errors.append(ArtifactProblem(field: field, message: "is not an adapter or batch-norm tensor of this job's combination"))
                continue
            }
            guard t.dtype == .F32, t.shape == shape, let values = try? t.floats() else {
                errors.append(ArtifactProblem(field: field, message: "must be F32 of shape \(shape), got \(t.dtype.rawValue) \(t.shape)"))
                continue
            }
            if !values.allSatisfy(\.isFinite) {
                errors.append(ArtifactProblem(field: field, message: "has values that are not finite (NaN or infinity)"))
            }
        }
        return errors
    }

    /// Refuses an artifact the job does not allow (`ArtifactRefusal.invalid`, every offending tensor; the route
    /// answers 422 `invalid_artifact`).
    package func check(_ tensors: [String: SafeTensor], document: JobDocument) throws {
        let errors = try problems(tensors, document: document)
        guard !errors.isEmpty else { return }
        throw ArtifactRefusal.invalid(errors)
    }

    /// The weight a job's artifact carries in its domain's average: the samples it reports, at least 1 and at most
    /// what its document allowed it to train on (steps × batch size).
    package static func sampleWeight(reported: Int?, document: JobDocument) -> Int {
        let (product, overflow) = max(1, document.steps).multipliedReportingOverflow(by: max(1, document.batchSize))
        return min(max(1, reported ?? 1), overflow ? Int.max : product)
    }

    /// Refuses a succeeded result of an `adapt` attempt that uploaded no artifact (`ArtifactRefusal.missing`, answered
    /// 409 `artifact_missing`): such a job would count as adapted while its domain received nothing. Results of other
    /// kinds, of other devices' jobs, or of attempts that no longer hold the job pass through, for the job store to answer.
    package func requireArtifact(job: UUID, device: UUID, attempt: Int) throws {
        guard try artifacts.heldAdaptationLacksArtifact(job: job, device: device, attempt: attempt) else {
            return
        }
        throw ArtifactRefusal.missing(job: job, attempt: attempt)
    }

    /// The part of a package manifest that fixes the network's tensors.
    private struct LayoutManifest: Decodable {
        package struct Adapter: Decodable { var kind: String }
        package var architecture: Architecture
        package var adapter: Adapter
        package var blocks: [PositionSpec]
    }
}

/// One tensor (or the whole body) an artifact may not carry, named as the request's field.
package struct ArtifactProblem: Equatable, Sendable {
    package let field: String
    package let message: String
}

/// Why an artifact, or a success that needs one, is refused; the routes answer these as problems.
package enum ArtifactRefusal: Error, Equatable {
    /// The artifact holds tensors its job does not allow (every problem, in tensor-name order).
    case invalid([ArtifactProblem])
    /// A succeeded `adapt` attempt uploaded no artifact.
    case missing(job: UUID, attempt: Int)
}

/// A small map of model id → layout; beyond `capacity` it starts over (layouts are cheap to rebuild, models few).
package final class LayoutCache: Sendable {
    private let entries = Mutex<[UUID: AdaptationLayout]>([:])
    package let capacity: Int

    package init(capacity: Int) { self.capacity = max(1, capacity) }

    package func get(_ model: UUID) -> AdaptationLayout? { entries.withLock { $0[model] } }

    package func put(_ model: UUID, _ layout: AdaptationLayout) {
        entries.withLock { e in
            if e.count >= capacity { e.removeAll() }
            e[model] = layout
        }
    }
}
