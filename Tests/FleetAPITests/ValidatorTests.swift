import FleetAPI
import Foundation
import Testing

/// The other request validators of FleetAPI: each bad input is reported under its JSON path.
@Suite struct ValidatorTests {
    static let hardware = Hardware(class: "phone", gflops: 5, memoryMB: 2048)
    static let constraints = Constraints(latencyBudgetMs: 50, memoryBudgetMB: 100)

    @Test func deviceRegistrationNamesItsFields() {
        #expect(DeviceRegistration(name: "cam", hardware: Self.hardware, constraints: Self.constraints).validate().isEmpty)
        let cases: [(DeviceRegistration, String)] = [
            (DeviceRegistration(name: "", hardware: Self.hardware, constraints: Self.constraints), "name"),
            (DeviceRegistration(name: "cam", hardware: Hardware(class: "phone", gflops: -1, memoryMB: 2048), constraints: Self.constraints), "hardware.gflops"),
            (DeviceRegistration(name: "cam", hardware: Hardware(class: "phone", gflops: 5, memoryMB: 0), constraints: Self.constraints), "hardware.memory_mb"),
            (DeviceRegistration(name: "cam", hardware: Self.hardware, constraints: Constraints(latencyBudgetMs: .infinity, memoryBudgetMB: 100)), "constraints.latency_budget_ms"),
            (DeviceRegistration(name: "cam", hardware: Self.hardware, constraints: Self.constraints, context: DeviceContext(batteryPct: 101)), "context.battery_pct"),
        ]
        for (registration, field) in cases {
            #expect(registration.validate().map(\.field) == [field], "\(field): \(registration.validate())")
        }
    }

    @Test func anEmptyPatchIsRefusedAsTheBody() {
        #expect(DevicePatch().validate().map(\.field) == ["body"])
        #expect(DevicePatch(name: "x").validate().isEmpty)
    }

    @Test func jobMessagesNameTheirFields() {
        #expect(Heartbeat(attempt: 0).validate().map(\.field) == ["attempt"])
        #expect(Heartbeat(attempt: 1, progress: ["loss": .nan]).validate().map(\.field) == ["progress.loss"])
        #expect(JobResult(attempt: 1, outcome: .failed).validate().map(\.field) == ["error"])
        #expect(JobResult(attempt: 1, outcome: .succeeded, metrics: JobMetrics(accuracyAfter: 2)).validate().map(\.field) == ["metrics.accuracy_after"])
        #expect(JobResult(attempt: 1, outcome: .succeeded, variantLatenciesMs: [[1, 0]]).validate().map(\.field) == ["variant_latencies_ms.0.1"])
        #expect(JobResult(attempt: 1, outcome: .succeeded).validate().isEmpty)
    }

    @Test func planRequestsNameTheirFields() {
        let ok = PlanRequest(modelID: nil, hardware: Self.hardware, constraints: Self.constraints, context: nil, measuredLatenciesMs: nil)
        #expect(ok.validate().isEmpty)
        var bad = ok
        bad.measuredLatenciesMs = [[]]
        #expect(bad.validate().map(\.field) == ["measured_latencies_ms.0"])
    }
}
