import ElasticModel
import Foundation
import Learning
import PostgresClient
import Testing

/// A device's upload is checked against what its job allowed, through the real coordinator on a real PostgreSQL:
/// only the adapters and batch norms of its job's combination, in the model's exact shapes, finite; weighted by at
/// most what the job let it train on; a succeeded `adapt` result only with its artifact; a domain's aggregate only
/// for the devices its campaign targets; and the real agent installs only adaptation tensors from an aggregate.
@Suite struct ArtifactPolicyTests {
    let c: TestCoordinator
    init() throws { c = try TestCoordinator() }

    func domain(model: String, labels: String, steps: Int = 20, batch: Int = 64) -> String {
        """
        {"name": "fog", "model_id": "\(model)", "selector": {"labels": \(labels)},
         "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 50},
         "job": {"loss": "tent", "steps": \(steps), "batch_size": \(batch), "timeout_s": 600, "max_attempts": 3}}
        """
    }

    func lease(_ token: String) async throws -> (id: String, attempt: Int) {
        let r = try await c.request("GET", "/v1/agent/jobs/next?wait=0", token: token)
        guard r.status == 200, let id = r.object?["id"] as? String, let attempt = r.object?["attempt"] as? Int else {
            throw TestFailure("lease: \(r.status) \(r.text)")
        }
        return (id, attempt)
    }

    func succeed(_ token: String, _ job: String, samples: Int) async throws -> TestResponse {
        try await c.request("POST", "/v1/agent/jobs/\(job)/result", token: token, json: """
            {"attempt": 1, "outcome": "succeeded", "metrics": {"samples": \(samples), "steps": 2}}
            """)
    }

    @Test func everyBadArtifactIsRefusedNamingTheTensorAndNothingIsStored() async throws {
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "a", labels: ["fleet": "bad"])
        #expect(try await c.request("POST", "/v1/domains", json: domain(model: model, labels: #"{"fleet": "bad"}"#)).status == 201)
        let job = try await lease(token)
        let honest = TestCoordinator.fixtureArtifact()
        let adapter = try #require(honest.keys.filter { $0.contains(".adapter.") }.sorted().first)
        let norm = try #require(honest.keys.filter { $0.hasSuffix(".running_var") }.sorted().first)
        let adapterShape = honest[adapter]!.shape
        let frozen = try ElasticNetwork(architecture: TestCoordinator.fixtureArchitecture, positions: TestCoordinator.fixturePositions,
                                        adapterKind: .parallel).model.namedTensors()
        func nonFinite(_ x: Float, _ shape: [Int]) -> SafeTensor {
            var values = [Float](repeating: 0.1, count: shape.reduce(1, *))
            values[values.count / 2] = x
            return SafeTensor(floats: values, shape: shape)
        }
        let cases: [(String, SafeTensor)] = [
            ("head.weight", frozen["head.weight"]!),                                   // frozen, outside the adapter namespace
            ("blocks.0.conv1.weight", frozen["blocks.0.conv1.weight"]!),               // a frozen convolution of the combination
            ("blocks.7.adapter.conv.weight", SafeTensor(floats: [1], shape: [1, 1, 1, 1])), // not in the model at all
            ("blocks.1.s50.bn1.weight", frozen["blocks.1.s50.bn1.weight"]!),           // a norm of a variant the job does not run
            (adapter, nonFinite(.nan, adapterShape)),
            (norm, nonFinite(.infinity, honest[norm]!.shape)),
            (adapter, SafeTensor(floats: [Float](repeating: 0, count: adapterShape.reduce(1, *) * 2), shape: [adapterShape[0] * 2] + adapterShape.dropFirst())),
        ]
        for (name, tensor) in cases {
            // The bad tensor rides along with an otherwise honest artifact: the whole upload is refused.
            var tensors = honest
            tensors[name] = tensor
            let r = try await c.uploadArtifact(job: job.id, attempt: job.attempt, token: token, tensors: tensors)
            #expect(r.status == 422 && r.problemCode == "invalid_artifact" && r.isProblem, "\(name): \(r.status) \(r.text)")
            #expect(r.problemFields == ["tensors.\(name)"], "\(name): \(r.text)")
            #expect(try c.count("job_artifacts") == 0)
            #expect(try c.count("jobs WHERE artifact_sha256 IS NOT NULL") == 0)
        }
        let ok = try await c.uploadArtifact(job: job.id, attempt: job.attempt, token: token, tensors: honest)
        #expect(ok.status == 201, "\(ok.text)")
        #expect(try c.count("job_artifacts") == 1)
    }

    /// A device that claims a billion samples weighs no more than its job allowed (steps × batch = 2 × 50 = 100
    /// here, what the honest device also trained on): the average is the plain mean, not the liar's tensors. A
    /// device whose first upload had a shape of its own does not lock the honest one out.
    @Test func aHugeSampleCountDoesNotDominateAndHonestDevicesStillAggregate() async throws {
        let model = try c.insertModel()
        let (_, honest) = try await c.registerDevice(name: "honest", labels: ["fleet": "w"])
        let (_, liar) = try await c.registerDevice(name: "liar", labels: ["fleet": "w"])
        let created = try await c.request("POST", "/v1/domains", json: domain(model: model, labels: #"{"fleet": "w"}"#, steps: 2, batch: 50))
        let domainID = try #require((created.object?["domain"] as? [String: Any])?["id"] as? String)
        let liarJob = try await lease(liar)
        let honestJob = try await lease(honest)

        // The liar first tries a shape of its own (which, folded first, used to refuse everyone else's).
        var odd = TestCoordinator.fixtureArtifact(value: 0)
        let adapter = try #require(odd.keys.filter { $0.contains(".adapter.") }.sorted().first)
        odd[adapter] = SafeTensor(floats: [0, 0], shape: [2])
        #expect(try await c.uploadArtifact(job: liarJob.id, attempt: 1, token: liar, tensors: odd).problemFields == ["tensors.\(adapter)"])
        #expect(try await c.uploadArtifact(job: liarJob.id, attempt: 1, token: liar, tensors: TestCoordinator.fixtureArtifact(value: 0)).status == 201)
        #expect(try await succeed(liar, liarJob.id, samples: 1_000_000_000).status == 200)
        #expect(try await c.uploadArtifact(job: honestJob.id, attempt: 1, token: honest, tensors: TestCoordinator.fixtureArtifact(value: 1)).status == 201)
        #expect(try await succeed(honest, honestJob.id, samples: 100).status == 200)

        let answer = try await c.request("GET", "/v1/agent/domains/\(domainID)/adapter", token: honest)
        #expect(answer.status == 200, "\(answer.text)")
        let (averaged, meta) = try SafeTensors.decode(Array(answer.body))
        #expect(meta["devices"] == "2" && meta["samples"] == "200", "\(meta)")
        #expect(Set(averaged.keys) == Set(TestCoordinator.fixtureArtifact().keys))
        for (name, t) in averaged {
            for x in try t.floats() { #expect(abs(x - 0.5) < 1e-6, "\(name): \(x)") }
        }
    }

    @Test func aDeviceOutsideTheDomainCannotReadItsAggregate() async throws {
        let model = try c.insertModel()
        let (_, inside) = try await c.registerDevice(name: "inside", labels: ["fleet": "in"])
        let (_, outside) = try await c.registerDevice(name: "outside", labels: ["fleet": "out"])
        let created = try await c.request("POST", "/v1/domains", json: domain(model: model, labels: #"{"fleet": "in"}"#))
        let domainID = try #require((created.object?["domain"] as? [String: Any])?["id"] as? String)
        let job = try await lease(inside)
        #expect(try await c.uploadArtifact(job: job.id, attempt: 1, token: inside, tensors: TestCoordinator.fixtureArtifact()).status == 201)
        #expect(try await succeed(inside, job.id, samples: 10).status == 200)
        #expect(try await c.request("GET", "/v1/agent/domains/\(domainID)/adapter", token: inside).status == 200)
        let refused = try await c.request("GET", "/v1/agent/domains/\(domainID)/adapter", token: outside)
        #expect(refused.status == 404 && refused.isProblem, "\(refused.text)")
        // The same answer as for a domain that does not exist: nothing tells the outsider the domain is there.
        let unknown = try await c.request("GET", "/v1/agent/domains/\(UUID().uuidString.lowercased())/adapter", token: outside)
        #expect(unknown.status == 404 && unknown.problemCode == refused.problemCode)
    }

    @Test func aSucceededAdaptResultWithoutItsArtifactIsRefused() async throws {
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "forgetful", labels: ["fleet": "f"])
        let created = try await c.request("POST", "/v1/domains", json: domain(model: model, labels: #"{"fleet": "f"}"#))
        let campaign = try #require((created.object?["campaign"] as? [String: Any])?["id"] as? String)
        let job = try await lease(token)
        let refused = try await succeed(token, job.id, samples: 10)
        #expect(refused.status == 409 && refused.problemCode == "artifact_missing" && refused.isProblem, "\(refused.text)")
        #expect(refused.problemFields == ["outcome"])
        // Nothing changed: the attempt still holds the job, nothing was recorded or aggregated.
        #expect(try c.count("jobs WHERE state = 'leased' AND result IS NULL") == 1)
        #expect(try c.count("device_metrics WHERE job_id IS NOT NULL") == 0)
        #expect(try c.count("domain_adapters") == 0)
        // With its artifact the same result is recorded.
        #expect(try await c.uploadArtifact(job: job.id, attempt: 1, token: token, tensors: TestCoordinator.fixtureArtifact()).status == 201)
        #expect(try await succeed(token, job.id, samples: 10).status == 200)
        #expect(try await c.request("GET", "/v1/campaigns/\(campaign)").object?["status"] as? String == "completed")
        #expect(try c.count("domain_adapters") == 1)
    }

    /// An artifact that was stored without the check (before it existed) is checked again when it would be
    /// folded in, and left out of the domain's adapter.
    @Test func anUncheckedStoredArtifactIsNotFoldedIn() async throws {
        let model = try c.insertModel()
        let (_, token) = try await c.registerDevice(name: "legacy", labels: ["fleet": "l"])
        #expect(try await c.request("POST", "/v1/domains", json: domain(model: model, labels: #"{"fleet": "l"}"#)).status == 201)
        let job = try await lease(token)
        var tensors = TestCoordinator.fixtureArtifact()
        tensors["head.weight"] = SafeTensor(floats: [Float](repeating: 9, count: 80), shape: [10, 8])
        let bytes = SafeTensors.encode(tensors)
        _ = try c.sql("""
            INSERT INTO job_artifacts (job_id, attempt, sha256, size_bytes, content, created_at)
            VALUES (\(UUID(uuidString: job.id)!), 1, sha256(\(bytes)), \(bytes.count), \(bytes), now())
            """)
        #expect(try await succeed(token, job.id, samples: 10).status == 200)
        #expect(try c.count("domain_adapters") == 0)
    }

    /// The real agent, given an aggregate that also carries a frozen weight (the head, in its exact shape), refuses
    /// it instead of installing it: the `apply` job fails naming the tensor.
    @Test func theAgentInstallsOnlyAdaptationTensorsFromAnAggregate() async throws {
        let model = try await FleetAdaptationTests.publish(c)
        let (id, token) = try await c.registerDevice(name: "applier", labels: ["fleet": "apply"])
        #expect(try await c.request("PUT", "/v1/agent/context", token: token, json: #"{"battery_pct": 5}"#).status == 200)
        let created = try await c.request("POST", "/v1/domains", json: """
            {"name": "poisoned", "model_id": "\(model)", "selector": {"labels": {"fleet": "apply"}},
             "rollout": {"canary_pct": 100, "wave_size_pct": 100, "success_threshold_pct": 50},
             "job": {"loss": "tent", "steps": 5, "timeout_s": 600, "max_attempts": 1, "batch_size": 32}}
            """)
        #expect(created.status == 201, "\(created.text)")
        let domainID = try #require((created.object?["domain"] as? [String: Any])?["id"] as? String)
        #expect(try c.count("jobs WHERE kind = 'apply'") == 1)
        let net = try ElasticPackage.loadNetwork(path: FleetAdaptationTests.baseModel)
        let all = net.model.namedTensors()
        let adapter = try #require(all.keys.filter { $0.contains(".adapter.") }.sorted().first)
        let head = all["head.weight"]!
        let poisoned = SafeTensors.encode([adapter: all[adapter]!,
                                           "head.weight": SafeTensor(floats: [Float](repeating: 0, count: head.elementCount), shape: head.shape)],
                                          metadata: ["devices": "1", "samples": "1"])
        _ = try c.sql("""
            INSERT INTO domain_adapters (domain_id, version, sha256, content, device_count, sample_count, created_at)
            VALUES (\(UUID(uuidString: domainID)!), 1, sha256(\(poisoned)), \(poisoned), 1, 1, now())
            """)
        let agent = try FleetAdaptationTests.startAgent(c, token: token, data: try FleetAdaptationTests.deviceData(14))
        defer { if agent.isRunning { agent.terminate() } }
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline, try c.count("jobs WHERE state = 'failed'") == 0 {
            try await Task.sleep(for: .milliseconds(200))
        }
        let errors = try c.sql("SELECT errors::text AS e FROM jobs WHERE device_id = \(UUID(uuidString: id)!) AND state = 'failed'").rows
        let text = try #require(errors.first).decode("e", as: String.self)
        #expect(text.contains("head.weight"), "\(text)")
    }
}

extension TestCoordinator {
    /// The network `insertModel` declares: a ResNet of 4 and 8 channels, two block positions with variants s0, s50
    /// and skip each, parallel adapters.
    static let fixtureArchitecture = Architecture.resnet(widths: [4, 8], blocksPerStage: [1, 1])
    static let fixturePositions: [PositionSpec] = try! ElasticNetwork.positions(of: fixtureArchitecture.makeModel(seed: 1), sparsities: [0, 0.5])

    /// The part of a package manifest that fixes the network's tensors, as the coordinator stores manifests.
    static let fixtureManifestJSON: String = {
        struct Manifest: Encodable {
            var architecture: Architecture
            var adapter: [String: String]
            var blocks: [PositionSpec]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try! encoder.encode(Manifest(architecture: fixtureArchitecture, adapter: ["kind": "parallel"], blocks: fixturePositions))
        return String(decoding: data, as: UTF8.self)
    }()

    /// What an honest device of the fixture model uploads for `variants` (the original blocks when empty): every
    /// adapter and batch-norm tensor of that combination, each value `value`.
    static func fixtureArtifact(variants: [String] = [], value: Float = 0.5) -> [String: SafeTensor] {
        let network = try! ElasticNetwork(architecture: fixtureArchitecture, positions: fixturePositions, adapterKind: .parallel)
        let layout = AdaptationLayout(network: network)
        let shapes = try! layout.tensors(for: variants.isEmpty ? layout.originalCombination : variants)
        return shapes.mapValues { SafeTensor(floats: [Float](repeating: value, count: $0.reduce(1, *)), shape: $0) }
    }

    /// `PUT /v1/agent/jobs/{id}/artifact` with the tensors as safetensors and their SHA-256.
    func uploadArtifact(job: String, attempt: Int, token: String, tensors: [String: SafeTensor]) async throws -> TestResponse {
        let bytes = SafeTensors.encode(tensors)
        return try await request("PUT", "/v1/agent/jobs/\(job)/artifact?attempt=\(attempt)", token: token, body: Data(bytes),
                                 headers: ["Content-SHA256": try sha256Hex(bytes)])
    }
}
