import ArgumentParser
import CommandSupport
import Coordinator
import FleetAPI
import FleetClient
import Foundation

struct BenchHTTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Throughput and latency of the coordinator over HTTP, measured with wrk.",
        discussion: HelpText.reflow("""
            Starts a coordinator on its own embedded PostgreSQL (in a temporary directory), then runs wrk
            (Debian package `wrk`) against GET /healthz (the baseline: HTTP only), GET /v1/devices/{id}
            (HTTP + one indexed PostgreSQL read + auth), and POST /v1/devices (a registration: one
            transaction with an insert). Prints requests/s, p50 and p99 for each, and the ratios to /healthz; and the
            CPU time (coordinator and its PostgreSQL) each request took, with its ratio to /healthz's, which other
            work on the same cores does not move as it moves requests/s.
            Build in release mode first: swift build -c release --product fleetadapt
            """))

    @Option(help: "Concurrent connections wrk keeps open.")
    var connections: Int = 64

    @Option(help: "Seconds per measurement.")
    var duration: Int = 10

    @Option(help: "wrk threads (the coordinator shares the same cores).")
    var wrkThreads: Int = 2

    @Option(help: "Coordinator HTTP worker threads.")
    var serverThreads: Int = 8

    func validate() throws {
        guard connections >= 1, duration >= 1, wrkThreads >= 1, serverThreads >= 1 else {
            throw ValidationError("every option must be at least 1")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw ValidationError("wrk is not installed: apt-get install wrk")
        }
    }

    func run() throws {
        let dir = NSTemporaryDirectory() + "fleetadapt-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = "bench-admin-key-" + UUID().uuidString.lowercased()
        let config = CoordinatorConfiguration(host: "127.0.0.1", port: 0, dataDirectory: dir, adminKey: key,
                                              threadPoolSize: serverThreads, maxDatabaseConnections: serverThreads, accessLog: false)
        let app = try CoordinatorApp(configuration: config)
        defer { app.shutdown() }
        let base = "http://127.0.0.1:\(app.port)"
        let device = DeviceRegistration(name: "bench", hardware: Hardware(class: "jetson-tx2", gflops: 20, memoryMB: 4096),
                                        constraints: Constraints(latencyBudgetMs: 30, memoryBudgetMB: 256))
        let id = try CoordinatorClient(baseURL: base, token: key).registerDevice(device).device.id.uuidString.lowercased()
        // wrk posts the same registration; the body is the wire coder's JSON (which has no single quotes to escape in Lua).
        let registration = String(decoding: try WireJSON.encode(device), as: UTF8.self)

        let script = dir + "/post.lua"
        try """
            wrk.method = "POST"
            wrk.body = '\(registration)'
            wrk.headers["Content-Type"] = "application/json"
            """.write(toFile: script, atomically: true, encoding: .utf8)

        print("coordinator: \(serverThreads) worker threads, embedded PostgreSQL; wrk: \(wrkThreads) threads, \(connections) connections, \(duration) s each")
        let cpu = ProcessCPU(postmaster: app.embeddedDatabase?.postmasterPID)
        let health = try wrk(base + "/healthz", [], cpu: cpu)
        let read = try wrk(base + "/v1/devices/\(id)", ["-H", "Authorization: Bearer \(key)"], cpu: cpu)
        let register = try wrk(base + "/v1/devices", ["-H", "Authorization: Bearer \(key)", "-s", script], cpu: cpu)
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : String(repeating: " ", count: width - text.count) + text }
        print("route".padding(toLength: 22, withPad: " ", startingAt: 0) + pad("requests/s", 12) + pad("p50 ms", 9) + pad("p99 ms", 9)
              + pad("ratio", 8) + pad("CPU µs/req", 12) + pad("CPU ratio", 11))
        for (name, r) in [("GET /healthz", health), ("GET /v1/devices/{id}", read), ("POST /v1/devices", register)] {
            print(name.padding(toLength: 22, withPad: " ", startingAt: 0) + pad(String(format: "%.0f", r.rps), 12)
                  + pad(String(format: "%.2f", r.p50), 9) + pad(String(format: "%.2f", r.p99), 9)
                  + pad(String(format: "%.3f", r.rps / health.rps), 8) + pad(String(format: "%.0f", r.cpuPerRequest * 1e6), 12)
                  + pad(String(format: "%.3f", health.cpuPerRequest / r.cpuPerRequest), 11))
        }
        if read.errors + register.errors + health.errors > 0 {
            print("non-2xx or socket errors: healthz \(health.errors), read \(read.errors), register \(register.errors)")
        }
    }

    /// `cpuPerRequest`: seconds of CPU the coordinator and its PostgreSQL spent per request during the run.
    struct WrkResult { var rps: Double; var p50: Double; var p99: Double; var errors: Int; var cpuPerRequest: Double }

    func wrk(_ url: String, _ extra: [String], cpu: ProcessCPU) throws -> WrkResult {
        let before = cpu.seconds()
        let out = try Shell.run(["/usr/bin/wrk", "-t\(wrkThreads)", "-c\(connections)", "-d\(duration)s", "--latency"] + extra + [url])
        let used = cpu.seconds() - before
        let requests = out.split(separator: "\n").first { $0.contains(" requests in ") }
            .flatMap { Double($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? .nan
        func ms(_ label: String) -> Double {
            guard let line = out.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(label) }),
                  let v = line.split(separator: " ").last else { return .nan }
            let s = String(v)
            if s.hasSuffix("us") { return (Double(s.dropLast(2)) ?? .nan) / 1000 }
            if s.hasSuffix("ms") { return Double(s.dropLast(2)) ?? .nan }
            if s.hasSuffix("s") { return (Double(s.dropLast(1)) ?? .nan) * 1000 }
            return .nan
        }
        let rps = out.split(separator: "\n").first { $0.hasPrefix("Requests/sec:") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? .nan
        var errors = 0
        if let line = out.split(separator: "\n").first(where: { $0.contains("Non-2xx") }) { errors += Int(line.split(separator: " ").last ?? "") ?? 0 }
        return WrkResult(rps: rps, p50: ms("50%"), p99: ms("99%"), errors: errors, cpuPerRequest: used / requests)
    }
}

/// Runs a program and returns its standard output (waits for it; stderr passes through).
enum Shell {
    static func run(_ argv: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("\(argv[0]) exited with \(p.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }
}
