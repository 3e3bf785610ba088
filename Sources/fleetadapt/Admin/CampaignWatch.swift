import FleetAPI
import FleetClient
import Foundation

/// Follows a campaign until it completes, is aborted or canceled: one progress bar per wave, redrawn in place
/// on a terminal (standard error), or a plain line whenever the counts change otherwise (logs, CI); then the
/// per-device table the demo prints (planned combination, measured latency, what adaptation changed).
struct CampaignWatch {
    let client: CoordinatorClient
    let id: UUID
    var interval: Double = 2
    /// Seconds after which watching gives up (nil: until the campaign ends).
    var timeout: Double?
    var isTerminal = isatty(STDERR_FILENO) == 1
    /// Devices the closing table shows at most (each costs three reads).
    static let maxTableRows = 200

    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }

    /// The campaign's final status.
    func run() throws -> CampaignStatus {
        let started = Date()
        var drawn = 0
        var lastLine = ""
        var failures = 0
        while true {
            let view: CampaignView
            do {
                view = try client.campaign(id: id)
                failures = 0
            } catch let problem as ProblemError {
                throw problem
            } catch {
                // The coordinator away for a moment (a restart): keep watching, but not for ever.
                failures += 1
                if failures >= 30 { throw error }
                Thread.sleep(forTimeInterval: interval)
                continue
            }
            let elapsed = Date().timeIntervalSince(started)
            let lines = Self.lines(view, elapsed: elapsed)
            if isTerminal {
                // Each line kept within the terminal's width: a wrapped line would take two rows, and moving up by
                // the line count would then leave the old frame's top behind.
                let width = Self.terminalWidth()
                var text = drawn > 0 ? "\u{1B}[\(drawn)A" : ""
                for line in lines { text += "\r\u{1B}[2K" + Self.fit(line, width: width - 1) + "\n" }
                FileHandle.standardError.write(Data(text.utf8))
                drawn = lines.count
            } else {
                let summary = Self.summary(view)
                if summary != lastLine {
                    FileHandle.standardError.write(Data((String(format: "%5.0f s  ", elapsed) + summary + "\n").utf8))
                    lastLine = summary
                }
            }
            if view.status.isFinished { return view.status }
            if let timeout, elapsed >= timeout {
                throw Timeout(description: "campaign \(id.uuidString.lowercased()) is still \(view.status.rawValue) after \(Int(timeout)) s")
            }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    /// The width of the terminal standard error is, else the tables' width.
    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return Terminal.width()
    }

    /// `line` cut to `width` characters, ending in `…` when cut.
    static func fit(_ line: String, width: Int) -> String {
        line.count <= width ? line : String(line.prefix(max(0, width - 1))) + "…"
    }

    static let finishedStates = JobState.allCases.filter(\.isTerminal).map(\.rawValue)

    /// The header line and one bar per wave.
    static func lines(_ view: CampaignView, elapsed: Double) -> [String] {
        var out = ["campaign \(view.id.uuidString.lowercased())  \(view.status.rawValue)\(view.statusReason.map { " (\($0))" } ?? "")  "
                   + "\(view.targetCount) devices, \(view.waveCount) waves  \(ProgressBar.clock(elapsed)) elapsed"]
        for wave in view.waves {
            let done = finishedStates.reduce(0) { $0 + (wave.counts[$1] ?? 0) }
            let fraction = wave.size > 0 ? Double(done) / Double(wave.size) : 1
            let name = wave.wave == 0 ? "wave 0 (canary)" : "wave \(wave.wave)"
            let state = wave.released ? "" : "  waiting"
            out.append(name.padding(toLength: 16, withPad: " ", startingAt: 0) + "[\(ProgressBar.bar(fraction))] "
                       + "\(done)/\(wave.size)  \(counts(wave.counts))\(state)")
        }
        return out
    }

    static func counts(_ c: [String: Int]) -> String {
        c.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// One line for logs: status, released waves, counts.
    static func summary(_ view: CampaignView) -> String {
        "\(view.status.rawValue)  wave \(min(view.releasedWave + 1, view.waveCount))/\(view.waveCount) released  \(counts(view.counts))"
    }

    /// The demo's table, one row per device of the campaign, on standard output.
    func printDeviceTable() throws {
        var deviceIDs: [UUID] = []
        var cursor: String?
        for _ in 0..<1_000 {
            let page = try JSONDocument.parse(client.campaignJobs(id: id, limit: 500, after: cursor).body)
            for job in page["items"].items {
                if let text = job["device_id"].string, let d = UUID(uuidString: text), !deviceIDs.contains(d) { deviceIDs.append(d) }
            }
            cursor = page["next"].string
            if cursor == nil || deviceIDs.count >= Self.maxTableRows { break }
        }
        print("")
        print(DemoTable.header)
        for d in deviceIDs.prefix(Self.maxTableRows) {
            let name = (try? client.device(id: d))?.name ?? d.uuidString.lowercased()
            let decision = (try? client.deviceConfig(id: d))?.decision
            let measured = (try? client.metrics(device: d, kind: "job.adapt"))?.items.last?.values ?? [:]
            print(DemoTable.row(device: name, planned: decision, measured: measured))
        }
        if deviceIDs.count > Self.maxTableRows {
            print("(the first \(Self.maxTableRows) devices; `fleetadapt campaigns jobs \(id.uuidString.lowercased()) --all` lists every job)")
        }
    }
}
