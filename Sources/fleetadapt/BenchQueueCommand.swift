import ArgumentParser
import CommandSupport
import Coordinator
import FleetAPI
import FleetClient
import Foundation

struct BenchQueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Campaign fan-out, lease throughput and long-poll wake-up latency of the jobs queue.",
        discussion: HelpText.reflow("""
            On a coordinator with its own embedded PostgreSQL: (1) inserts N devices, times POST /v1/domains
            targeting all of them (planning, one COPY of N jobs, one NOTIFY) next to a raw COPY of the same
            N job rows into a scratch table in the same run; (2) runs wrk with 64 connections leasing jobs,
            each request as another device; (3) times, over repeated trials, how long a waiting
            GET /v1/agent/jobs/next takes to answer after a job for its device is created. The lease figure comes with
            the CPU time (coordinator and its PostgreSQL) per leased job, which other work on the cores does not move.
            Build in release mode first: swift build -c release --product fleetadapt
            """))

    @Option(help: "Devices (and jobs) in the fan-out measurement.")
    var devices: Int = 100_000

    @Option(help: "wrk connections for lease throughput.")
    var connections: Int = 64

    @Option(help: "Seconds of lease measurement.")
    var duration: Int = 10

    @Option(help: "Long-poll wake-up trials.")
    var trials: Int = 50

    func validate() throws {
        guard devices >= 100, connections >= 1, duration >= 1, trials >= 1 else { throw ValidationError("values too small") }
    }

    func run() throws {
        let dir = NSTemporaryDirectory() + "fleetadapt-bench-queue-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = "bench-admin-key-" + UUID().uuidString.lowercased()
        let app = try CoordinatorApp(configuration: CoordinatorConfiguration(
            host: "127.0.0.1", port: 0, dataDirectory: dir, adminKey: key, threadPoolSize: 16, maxDatabaseConnections: 16, accessLog: false))
        defer { app.shutdown() }
        let fixtures = app.benchmarkFixtures
        let base = "http://127.0.0.1:\(app.port)"
        let admin = CoordinatorClient(baseURL: base, token: key)
        let model = try fixtures.insertModel(name: "bench")
        try fixtures.insertDevices(count: devices, tokenPrefix: "bulk-", labels: ["fleet": "bulk"])
        print("fan-out: \(devices) devices")
        let fanOut = DomainRequest(name: "fog", modelID: model, selector: .init(labels: ["fleet": "bulk"]),
                                   rollout: .init(canaryPct: 100, waveSizePct: 100),
                                   job: .init(loss: .tent, steps: 10, timeoutS: 600, maxAttempts: 3))
        let t0 = ContinuousClock.now
        _ = try admin.createDomain(fanOut)
        let campaignTime = ContinuousClock.now - t0

        // Baseline: the same rows through a raw COPY, no planning, no HTTP, no JSON.
        let copyTime = try fixtures.rawCopyOfJobs()
        print(String(format: "  POST /v1/domains (%d jobs):   %8.1f ms", devices, campaignTime.ms))
        print(String(format: "  raw COPY of the same rows:     %8.1f ms", copyTime.ms))
        print(String(format: "  ratio (campaign / COPY):       %8.2f", campaignTime.ms / copyTime.ms))

        // Lease throughput: every request comes from another device.
        let script = dir + "/lease.lua"
        try """
            local counter = 0
            setup = function(thread) thread:set("base", counter * \(devices / 4)); counter = counter + 1 end
            init = function() i = base end
            request = function()
              i = i + 1
              return wrk.format("GET", "/v1/agent/jobs/next?wait=0", {["Authorization"] = "Bearer bulk-" .. i})
            end
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let cpu = ProcessCPU(postmaster: app.embeddedDatabase?.postmasterPID)
        let cpuBefore = cpu.seconds()
        let out = try Shell.run(["/usr/bin/wrk", "-t2", "-c\(connections)", "-d\(duration)s", "--latency", "-s", script, base + "/v1/agent/jobs/next"])
        let cpuUsed = cpu.seconds() - cpuBefore
        let rps = out.split(separator: "\n").first { $0.hasPrefix("Requests/sec:") }.map { String($0.split(separator: " ").last ?? "") } ?? "?"
        let leased = try fixtures.leasedJobCount()
        print("lease throughput (\(connections) pollers, each request another device): \(rps) requests/s, \(leased) jobs leased")
        print(String(format: "  CPU time (coordinator + its PostgreSQL) per leased job: %.0f µs", cpuUsed / Double(max(leased, 1)) * 1e6))

        // Long-poll wake-up: a device waits; a campaign for it is created; time until the poll answers.
        var samples: [Double] = []
        for i in 0..<trials {
            let token = "bulk-\(devices - i)"
            guard let id = try fixtures.deviceID(token: token) else { throw ValidationError("bench device \(token) is missing") }
            try fixtures.cancelQueuedJobs(device: id)
            let answered = DispatchSemaphore(value: 0)
            let end = Mutex(ContinuousClock.now)
            Thread.detachNewThread {
                _ = try? CoordinatorClient(baseURL: base, token: token).leaseNext(wait: 30, retry: .attempts(1))
                end.withLock { $0 = ContinuousClock.now }
                answered.signal()
            }
            Thread.sleep(forTimeInterval: 0.2)
            let start = ContinuousClock.now
            _ = try admin.createDomain(DomainRequest(name: "wake-\(i)", modelID: model, selector: .init(deviceIDs: [id]),
                                                     rollout: .init(canaryPct: 100),
                                                     job: .init(loss: .tent, steps: 1, timeoutS: 60, maxAttempts: 1)))
            answered.wait()
            samples.append((end.withLock { $0 } - start).ms)
        }
        samples.sort()
        print(String(format: "long-poll wake-up (POST /v1/domains → waiting agent answered), %d trials: p50 %.1f ms, p99 %.1f ms",
                     trials, samples[samples.count / 2], samples[min(samples.count - 1, Int(Double(samples.count) * 0.99))]))
    }
}

import Synchronization

extension Duration {
    var ms: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
