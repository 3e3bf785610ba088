import CoordinatorStore
import ElasticModel
import FleetAPI
import Foundation
import Learning
import ONNXExport

/// A device's current config rendered as one standalone ONNX file: its model's package composed with the config's
/// variants, with the adapters and batch-norm statistics the config names — the device's own artifact (`local`) or
/// the domain's aggregate at the config's version (`aggregated`) — so an application on the device, or an operator,
/// can run exactly that subnet in onnxruntime, TensorRT or OpenVINO.
///
/// The answer is described before it is rendered (`describe`): its entity tag names the config version, the part
/// and the digest of the adapters, so `If-None-Match` answers 304 after a few reads and no rendering. The tag needs
/// the digest because a second adaptation in the same domain changes the adapters without changing the config.
package struct DeviceModelExport: Sendable {
    package let configs: ConfigStore
    package let models: ModelStore
    package let artifacts: JobArtifactStore
    package let domainAdapters: DomainAdapterStore

    package init(configs: ConfigStore, models: ModelStore, artifacts: JobArtifactStore, domainAdapters: DomainAdapterStore) {
        self.configs = configs
        self.models = models
        self.artifacts = artifacts
        self.domainAdapters = domainAdapters
    }

    /// Why a device's model cannot be rendered.
    package enum Failure: Error, Equatable {
        /// The device has not been planned yet.
        case noConfig
        /// A device or edge part was asked of a config that runs the whole network on the device.
        case notSplit
        /// The adapters the config names are gone (e.g. the artifact of a job that was deleted).
        case adaptersUnavailable(String)
        /// The stored package could not be read or exported; the message says why.
        case unrenderable(String)
    }

    /// Where the adapted tensors come from.
    package enum Adapters: Sendable, Equatable {
        case local(job: UUID, attempt: Int, sha256: [UInt8])
        case aggregated(domain: UUID, version: Int, sha256: [UInt8])

        var sha256: [UInt8] {
            switch self {
            case .local(_, _, let d), .aggregated(_, _, let d): return d
            }
        }
    }

    /// What one answer is made of.
    package struct Description: Sendable {
        package let config: DeviceConfigView
        package let model: ModelStore.Row
        package let adapters: Adapters?
        package let part: ExportPart
        /// A strong tag: the same config version, part and adapters always render the same bytes.
        package let etag: String
    }

    package func describe(device: UUID, part: ExportPart) throws -> Description {
        guard let config = try configs.current(device) else { throw Failure.noConfig }
        if part != .whole, config.decision.partition == nil { throw Failure.notSplit }
        guard let model = try models.find(config.decision.modelID) else {
            throw Failure.unrenderable("the config's model \(config.decision.modelID.uuidString.lowercased()) is not stored")
        }
        var adapters: Adapters?
        if let choice = config.decision.adapters {
            switch choice.source {
            case .local:
                guard let a = try artifacts.newestAdaptation(device: device, domain: choice.domainID) else {
                    throw Failure.adaptersUnavailable("the device's own adapters for domain \(choice.domainID.uuidString.lowercased()) are not stored")
                }
                adapters = .local(job: a.job, attempt: a.attempt, sha256: a.sha256)
            case .aggregated:
                let version: DomainAdapterStore.Version?
                if let v = choice.version {
                    version = try domainAdapters.version(domain: choice.domainID, version: v)
                } else {
                    version = try domainAdapters.newest(domain: choice.domainID)
                }
                guard let version else {
                    throw Failure.adaptersUnavailable("domain \(choice.domainID.uuidString.lowercased()) has no aggregated adapters\(choice.version.map { " of version \($0)" } ?? "")")
                }
                adapters = .aggregated(domain: choice.domainID, version: version.version, sha256: version.sha256)
            }
        }
        let digest = adapters.map { Secrets.hex(Array($0.sha256.prefix(8))) } ?? "base"
        return Description(config: config, model: model, adapters: adapters, part: part,
                           etag: "\"c\(config.version)-\(part.rawValue)-\(digest)\"")
    }

    /// The ONNX bytes of a description.
    package func render(_ d: Description) throws -> [UInt8] {
        guard let blob = try models.content(sha256: d.model.sha256) else { throw Failure.unrenderable("the model's package bytes are missing") }
        var tensors: [String: SafeTensor] = [:]
        switch d.adapters {
        case nil: break
        case .local(let job, let attempt, _)?:
            guard let content = try artifacts.content(job: job, attempt: attempt) else {
                throw Failure.adaptersUnavailable("the artifact of job \(job.uuidString.lowercased()) is gone")
            }
            tensors = try Self.decodeTensors(content)
        case .aggregated(let domain, let version, _)?:
            guard let v = try domainAdapters.version(domain: domain, version: version) else {
                throw Failure.adaptersUnavailable("version \(version) of domain \(domain.uuidString.lowercased())'s adapters is gone")
            }
            tensors = try Self.decodeTensors(v.content)
        }
        do {
            let export = try ModelExport(package: try ElasticPackage.decode(blob))
            try export.compose(Dictionary(d.config.decision.variants.map { ($0.block, $0.variant) }, uniquingKeysWith: { first, _ in first }))
            if !tensors.isEmpty { try export.install(adapters: tensors) }
            switch d.part {
            case .whole: return try export.onnx()
            case .device, .edge: return try export.onnx(part: d.part, splitAfterBlock: d.config.decision.partition?.splitAfterBlock)
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure.unrenderable("\(error)")
        }
    }

    private static func decodeTensors(_ bytes: [UInt8]) throws -> [String: SafeTensor] {
        do { return try SafeTensors.decode(bytes).tensors } catch { throw Failure.unrenderable("the stored adapters are not safetensors: \(error)") }
    }
}
