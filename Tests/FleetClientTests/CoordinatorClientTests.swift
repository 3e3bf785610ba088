import FleetAPI
import FleetClient
import Foundation
import HTTPServer
import Synchronization
import Testing

/// The client against a real server on loopback: what it retries and how, what it does not retry, how a refusal
/// reads, and what it puts on the wire.
@Suite(.serialized) struct CoordinatorClientTests {
    static let model = UUID(uuidString: "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D")!
    static let domain = UUID(uuidString: "FEDCBA98-7654-4321-ABCD-EF0123456789")!

    static func config(device: UUID) -> DeviceConfigView {
        DeviceConfigView(deviceID: device, version: 3, decision: PlanDecision(
            modelID: model, variants: [VariantChoice(block: "b0", variant: "orig")], partition: nil, adapters: nil,
            predicted: PredictedCost(accuracy: 0.9, latencyMs: 1.5, memoryMB: 2, energyMJ: 3), bindingConstraint: nil,
            feasible: true, reason: "fits", latencySource: "estimated"),
            trigger: "registration", createdAt: Date(timeIntervalSince1970: 1_790_000_000.5))
    }

    static func wire<T: Encodable>(_ value: T, status: Int = 200) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: Array((try? WireJSON.encode(value)) ?? Data()))
    }

    @Test func retries503WithGrowingBackoffThenAnswers() throws {
        let device = UUID()
        let server = try CannedServer { router, recorder in
            router.add(.GET, "/v1/agent/config") { request in
                if recorder.record(request) < 2 { throw HTTPError.serviceUnavailable("restarting") }
                return Self.wire(Self.config(device: device))
            }
        }
        defer { server.shutdown() }
        let answer = try CoordinatorClient(baseURL: server.baseURL, token: "t").config(attempts: 3)
        #expect(answer == .config(Self.config(device: device)))
        let times = server.seen.map(\.at)
        #expect(times.count == 3)
        // Backoff 0.2 s then 0.4 s, each ±25%: the gaps are at least 0.15 s and 0.3 s (lower bounds only: a slow
        // machine makes them longer).
        let first = times[1] - times[0], second = times[2] - times[1]
        #expect(first >= .milliseconds(140), "\(first)")
        #expect(second >= .milliseconds(290), "\(first) then \(second)")
    }

    @Test func givesUpAfterItsAttemptsOn5xx() throws {
        let server = try CannedServer { router, recorder in
            router.add(.GET, "/v1/campaigns/{id}") { request in
                recorder.record(request)
                throw HTTPError.serviceUnavailable("down")
            }
        }
        defer { server.shutdown() }
        do {
            _ = try CoordinatorClient(baseURL: server.baseURL, token: "t").campaign(id: UUID(), attempts: 2)
            Issue.record("a 503 answered")
        } catch let failure as CoordinatorClient.Failure {
            #expect(failure.cause == "HTTP 503", "\(failure)")
        }
        #expect(server.seen.count == 2)
    }

    @Test func connectionRefusedIsRetriedWithBackoffAndGivenUp() throws {
        let port = try closedPort()
        let client = CoordinatorClient(baseURL: "http://127.0.0.1:\(port)", token: "t")
        let start = ContinuousClock.now
        // Three tries wait 0.2 s and 0.4 s (±25%) between them.
        #expect(throws: CoordinatorClient.Failure.self) { _ = try client.send("GET", "/readyz", attempts: 3) }
        #expect(ContinuousClock.now - start >= .milliseconds(440))
    }

    @Test func untilAnsweredOutlastsAnOutage() throws {
        let port = try closedPort()
        let client = CoordinatorClient(baseURL: "http://127.0.0.1:\(port)", token: "t")
        let failures = CannedServer.Recorder.Log()
        let retry = CoordinatorClient.Retry.untilAnswered(maxDelay: 1, shouldStop: { false }, onFailure: { line in
            failures.append(.init(method: "", path: line, query: [:], headers: [:], body: [], at: .now))
        })
        // The server comes up only after the client has failed at least twice.
        let server = Box<CannedServer?>(nil)
        let bringUp = Thread {
            while failures.entries.count < 2 { Thread.sleep(forTimeInterval: 0.02) }
            server.set(try? CannedServer(port: port) { router, _ in
                router.add(.GET, "/v1/agent/jobs/next") { _ in .noContent }
            })
        }
        bringUp.start()
        defer { server.value?.shutdown() }
        let answer = try client.leaseNext(wait: 0, retry: retry)
        guard case .noJob = answer else { Issue.record("expected 204, got \(answer)"); return }
        let lines = failures.entries.map(\.path)
        #expect(lines.count >= 2)
        #expect(lines.allSatisfy { $0.contains("GET /v1/agent/jobs/next?wait=0 failed") && $0.contains("next try in") }, "\(lines)")
    }

    @Test func problemJSONIsATypedErrorAndNot4xxRetried() throws {
        let server = try CannedServer { router, recorder in
            router.add(.POST, "/v1/domains") { request in
                recorder.record(request)
                throw HTTPError.validation([FieldError(field: "job.steps", message: "must be 1–10000"),
                                            FieldError(field: "selector", message: "needs labels or device_ids")])
            }
            router.add(.GET, "/v1/campaigns/{id}") { request in
                recorder.record(request)
                throw HTTPError.notFound("No campaign.")
            }
        }
        defer { server.shutdown() }
        let client = CoordinatorClient(baseURL: server.baseURL, token: "admin")
        let request = DomainRequest(name: "fog", modelID: Self.model, selector: .init(), job: .init(loss: .tent, steps: 0, timeoutS: 60, maxAttempts: 1))
        do {
            _ = try client.createDomain(request, attempts: 5)
            Issue.record("a 422 was taken for success")
        } catch let problem as ProblemError {
            #expect(problem.status == 422 && problem.code == "validation_failed")
            #expect(problem.errors.map(\.field) == ["job.steps", "selector"] && problem.errors.first?.message == "must be 1–10000")
            #expect(problem.description.contains("POST /v1/domains: HTTP 422 validation_failed"), "\(problem)")
        }
        do {
            _ = try client.campaign(id: UUID(), attempts: 5)
            Issue.record("a 404 was taken for success")
        } catch let problem as ProblemError {
            #expect(problem.status == 404 && problem.code == "not_found", "\(problem)")
        }
        // Neither a 422 nor a 404 is tried again, whatever the attempts allow.
        #expect(server.seen.map(\.method) == ["POST", "GET"])
    }

    @Test func sendsUUIDsInLowerCase() throws {
        let server = try CannedServer { router, recorder in
            router.add(.POST, "/v1/domains") { request in
                recorder.record(request)
                throw HTTPError.conflict("no")
            }
            router.add(.POST, "/v1/agent/jobs/{id}/heartbeat") { request in
                recorder.record(request)
                return .noContent
            }
            router.add(.GET, "/v1/devices/{id}/config") { request in
                recorder.record(request)
                throw HTTPError.notFound("no")
            }
        }
        defer { server.shutdown() }
        let client = CoordinatorClient(baseURL: server.baseURL, token: "admin")
        _ = try? client.createDomain(DomainRequest(name: "fog", modelID: Self.model, selector: .init(deviceIDs: [Self.domain]),
                                                   job: .init(loss: .tent, steps: 1, timeoutS: 60, maxAttempts: 1)))
        #expect(try client.heartbeat(job: Self.domain, attempt: 1, progress: ["step": 1]) == .held)
        _ = try? client.deviceConfig(id: Self.model)
        let seen = server.seen
        #expect(seen.count == 3)
        let body = seen[0].text
        #expect(body.contains(Self.model.uuidString.lowercased()) && body.contains(Self.domain.uuidString.lowercased()), "\(body)")
        #expect(!body.contains(Self.model.uuidString) && !body.contains(Self.domain.uuidString), "\(body)")
        #expect(seen[1].path == "/v1/agent/jobs/\(Self.domain.uuidString.lowercased())/heartbeat")
        #expect(seen[2].path == "/v1/devices/\(Self.model.uuidString.lowercased())/config")
        #expect(seen[0].headers["authorization"] == "Bearer admin")
    }

    @Test func datesRoundTripAtMicrosecondsAndABadDateIsAnError() throws {
        let expires = Date(timeIntervalSince1970: 1_796_142_325.123456)
        let job = LeasedJob(id: Self.domain, campaignID: Self.model, attempt: 2, leaseExpiresAt: expires, document: JobDocument(
            kind: .adapt, modelID: Self.model, domainID: Self.domain, domainName: "fog", variants: ["orig"], loss: .tent,
            steps: 3, learningRate: 0.01, batchSize: 8))
        let good = try WireJSON.encode(job)
        let bad = Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: WireTimestamp.format(expires), with: "yesterday").utf8)
        let server = try CannedServer { router, recorder in
            router.add(.GET, "/v1/agent/jobs/next") { request in
                var headers = HTTPHeaders()
                headers.set("Content-Type", "application/json")
                return HTTPResponse(status: 200, headers: headers, body: Array(recorder.record(request) == 0 ? good : bad))
            }
        }
        defer { server.shutdown() }
        #expect(String(decoding: good, as: UTF8.self).contains("\"lease_expires_at\":\"2026-12-01T16:25:25.123456Z\""))
        let client = CoordinatorClient(baseURL: server.baseURL, token: "t")
        guard case .job(let leased) = try client.leaseNext(wait: 0, retry: .attempts(1)) else { Issue.record("no job"); return }
        #expect(WireTimestamp.format(leased.leaseExpiresAt) == "2026-12-01T16:25:25.123456Z")
        #expect(leased == job || abs(leased.leaseExpiresAt.timeIntervalSince(expires)) < 1e-6)
        #expect(throws: DecodingError.self) { _ = try client.leaseNext(wait: 0, retry: .attempts(1)) }
    }
}

/// A value shared with a thread in a test.
final class Box<Value: Sendable>: Sendable {
    private let state: Synchronization.Mutex<Value>
    init(_ value: Value) { state = .init(value) }
    var value: Value { state.withLock { $0 } }
    func set(_ value: Value) { state.withLock { $0 = value } }
}
