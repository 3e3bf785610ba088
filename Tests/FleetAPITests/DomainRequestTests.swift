import FleetAPI
import Foundation
import Testing

/// `DomainRequest.validate` without a coordinator: every bad input names its field, and a good one passes.
@Suite struct DomainRequestTests {
    static let model = UUID(uuidString: "00000000-0000-0000-0000-0000000000aa")!

    static func request(labels: [String: String]? = ["fleet": "a"], ids: [UUID]? = nil, rollout: DomainRequest.Rollout? = nil,
                        abort: DomainRequest.Abort? = nil, job: DomainRequest.JobSpec = .init(loss: .tent, steps: 10, timeoutS: 60, maxAttempts: 3),
                        name: String = "fog") -> DomainRequest {
        DomainRequest(name: name, modelID: model, selector: .init(labels: labels, deviceIDs: ids), rollout: rollout, abort: abort, job: job)
    }

    static func fields(_ r: DomainRequest) -> [String] { r.validate().map(\.field) }

    @Test func aGoodRequestHasNoIssues() {
        #expect(Self.request().validate().isEmpty)
        #expect(Self.request(labels: nil, ids: [UUID()]).validate().isEmpty)
        #expect(Self.request(job: .init(loss: .bnStats, steps: 0, timeoutS: 60, maxAttempts: 1)).validate().isEmpty, "bn-stats may take 0 steps")
        #expect(Self.request(job: .init(kind: "profile", loss: .noTraining, steps: 0, timeoutS: 60, maxAttempts: 1)).validate().isEmpty)
    }

    @Test func eachBadFieldIsNamed() {
        let id = UUID()
        let cases: [(DomainRequest, String)] = [
            (Self.request(name: ""), "name"),
            (Self.request(name: String(repeating: "n", count: 129)), "name"),
            (Self.request(labels: nil, ids: nil), "selector"),
            (Self.request(labels: ["a": "b"], ids: [id]), "selector"),
            (Self.request(labels: nil, ids: [id, id]), "selector.device_ids"),
            (Self.request(rollout: .init(canaryPct: 0)), "rollout.canary_pct"),
            (Self.request(rollout: .init(waveSizePct: 101)), "rollout.wave_size_pct"),
            (Self.request(rollout: .init(successThresholdPct: -1)), "rollout.success_threshold_pct"),
            (Self.request(rollout: .init(maxPerMinute: 0)), "rollout.max_per_minute"),
            (Self.request(abort: .init(failureThresholdPct: 200)), "abort.failure_threshold_pct"),
            (Self.request(abort: .init(minExecuted: 0)), "abort.min_executed"),
            (Self.request(job: .init(kind: "magic", loss: .tent, steps: 1, timeoutS: 60, maxAttempts: 1)), "job.kind"),
            (Self.request(job: .init(loss: .noTraining, steps: 1, timeoutS: 60, maxAttempts: 1)), "job.loss"),
            (Self.request(job: .init(loss: .tent, steps: 0, timeoutS: 60, maxAttempts: 1)), "job.steps"),
            (Self.request(job: .init(loss: .tent, steps: 1, timeoutS: 0, maxAttempts: 1)), "job.timeout_s"),
            (Self.request(job: .init(loss: .tent, steps: 1, timeoutS: 60, maxAttempts: 26)), "job.max_attempts"),
            (Self.request(job: .init(loss: .tent, steps: 1, timeoutS: 60, maxAttempts: 1, learningRate: 0)), "job.learning_rate"),
            (Self.request(job: .init(loss: .tent, steps: 1, timeoutS: 60, maxAttempts: 1, batchSize: 0)), "job.batch_size"),
            (Self.request(job: .init(loss: .tent, steps: 1, timeoutS: 60, maxAttempts: 1, leaseS: 0)), "job.lease_s"),
        ]
        for (request, field) in cases {
            #expect(Self.fields(request) == [field], "\(field): \(request.validate())")
        }
    }

    @Test func anUnknownLossIsADecodingErrorAtItsField() throws {
        let body = #"{"name":"fog","model_id":"\#(Self.model.uuidString)","selector":{"labels":{"a":"b"}},"job":{"loss":"magic","steps":1,"timeout_s":60,"max_attempts":1}}"#
        do {
            _ = try WireJSON.decode(DomainRequest.self, from: body)
            Issue.record("an unknown loss decoded")
        } catch DecodingError.dataCorrupted(let context) {
            #expect(context.codingPath.map(\.stringValue) == ["job", "loss"])
            #expect(context.debugDescription == "must be one of: tent, shot-im, eata, bn-stats")
        }
        let good = try WireJSON.decode(DomainRequest.self, from: body.replacingOccurrences(of: "magic", with: "shot-im"))
        #expect(good.job.loss == .shotIM)
        // A profile job needs no loss; it reads as "none" and is written back as the same wire value.
        let profile = try WireJSON.decode(DomainRequest.JobSpec.self, from: #"{"kind":"profile","timeout_s":60,"max_attempts":1}"#)
        #expect(profile.loss == .noTraining)
        #expect(try WireJSON.string(profile).contains(#""loss":"none""#))
    }

    @Test func lossesKeepTheirWireNames() throws {
        #expect(JobLoss.allCases.map(\.rawValue) == ["tent", "shot-im", "eata", "bn-stats", "none"])
        #expect(try JobLoss(named: "eata") == .eata)
        #expect(throws: ValidationIssue(field: "--loss", message: "must be one of: tent, shot-im, eata, bn-stats")) {
            try JobLoss(named: "TENT", field: "--loss")
        }
    }
}
