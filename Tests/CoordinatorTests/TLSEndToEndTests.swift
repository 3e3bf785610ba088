import FleetAPI
import FleetClient
import Foundation
import HTTPServer
import Testing
import TestSupport

/// The fleet over HTTPS: a coordinator serving TLS with a certificate of a private CA made at test time, the admin
/// registering a device and publishing a model through the typed client, and a real `fleetadapt-agent` given only
/// that CA (`--ca-file`) long-polling, leasing and finishing a job. Clients that do not trust the CA, or speak plain
/// HTTP, get nothing.
@Suite(.serialized) struct TLSEndToEndTests {
    @Test func registrationALongPollAndAJobRunOverHTTPS() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeCA("other")
        try pki.makeServer("coordinator", commonName: "localhost")
        let c = try TestCoordinator(tls: TLSConfiguration(certificateFile: pki.path("coordinator.pem"),
                                                          keyFile: pki.path("coordinator.key")))
        #expect(c.baseURL.hasPrefix("https://localhost:"))
        let trusted = ClientTLS(caFile: pki.path("ca.pem"))
        let admin = CoordinatorClient(baseURL: c.baseURL, token: TestCoordinator.adminKey, tls: trusted)
        #expect(try admin.ready())

        let package = try Data(contentsOf: URL(fileURLWithPath: FleetAdaptationTests.baseModel))
        let model = try admin.publishModel(name: "fmnist-tls", package: package)
        let created = try admin.registerDevice(DeviceRegistration(
            name: "tls-camera", hardware: Hardware(class: "jetson-tx2", gflops: 20, memoryMB: 4096),
            constraints: Constraints(latencyBudgetMs: 30, memoryBudgetMB: 256)))
        let campaign = try admin.createDomain(DomainRequest(
            name: "measure-over-tls", modelID: model.id, selector: .init(deviceIDs: [created.device.id]),
            rollout: .init(canaryPct: 100, waveSizePct: 100, successThresholdPct: 50),
            job: .init(kind: "profile", loss: .noTraining, steps: 0, timeoutS: 300, maxAttempts: 2))).campaign.id

        // The real agent, trusting only the private CA: it reports its context, long-polls, downloads the package,
        // measures every variant and reports the result, all over TLS.
        let agent = try FleetAdaptationTests.startAgent(c, token: created.token, data: try FleetAdaptationTests.deviceData(21),
                                                        arguments: ["--ca-file", pki.path("ca.pem")])
        defer { if agent.isRunning { agent.terminate() } }
        let deadline = Date().addingTimeInterval(240)
        var status = ""
        while Date() < deadline {
            status = try admin.campaign(id: campaign).status.rawValue
            if status == "completed" { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(status == "completed")
        // The agent's measurements arrived (its result, over TLS) and the job is done.
        #expect(try c.count("device_variant_latencies WHERE jsonb_array_length(latencies) = 3") == 1)
        #expect(try c.count("jobs WHERE state = 'succeeded'") == 1)

        // Nobody without the CA gets an answer: not the system's CAs, not another CA, not plain HTTP.
        for client in [CoordinatorClient(baseURL: c.baseURL, token: TestCoordinator.adminKey),
                       CoordinatorClient(baseURL: c.baseURL, token: TestCoordinator.adminKey, tls: ClientTLS(caFile: pki.path("other.pem"))),
                       CoordinatorClient(baseURL: "http://127.0.0.1:\(c.app.port)", token: TestCoordinator.adminKey)] {
            #expect(throws: CoordinatorClient.Failure.self) { try client.send("GET", "/v1/devices", attempts: 1) }
        }
    }
}
