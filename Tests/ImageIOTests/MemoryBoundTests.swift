import Foundation
import Testing
@testable import ImageIO

/// Peak RSS around a refusal. Serialized, so the control's 48 MB cannot overlap the refusals' measurement.
@Suite(.serialized) struct MemoryBoundTests {
    /// A 20000×20000 header (1.2 GB decoded) is refused before anything is allocated: peak RSS barely moves.
    @Test func hugeHeadersAreRefusedWithinAMemoryBound() throws {
        for name in ["huge.png", "huge.jpg"] {
            let path = Fixtures.path(name)
            // Least growth of several tries counts: other suites in this process may allocate meanwhile.
            var growth = Int.max
            for _ in 0..<3 {
                try Fixtures.resetPeak()
                let before = try Fixtures.status("VmRSS")
                do { _ = try ImageDecoder.decode(file: path); Issue.record("\(name) decoded") } catch let e as ImageError {
                    #expect(e.kind == .tooLarge && e.message.contains("20000x20000x3"), "\(e)")
                }
                growth = min(growth, try Fixtures.status("VmHWM") - before)
            }
            print("refusing \(name) (a 20000x20000 header) grew peak RSS by \(growth) bytes")
            #expect(growth < 8 << 20, "\(name): peak RSS grew by \(growth) bytes")
        }
    }

    /// The control for the test above: the same measurement sees the buffer of a header under the limit. A
    /// 4000×4000 header (48 MB decoded, under the 64 Mi default) over 31×23 pixels of data is allocated, then
    /// refused as corrupt; only the limit check keeps the 20000×20000 header's 1.2 GB away.
    ///
    /// Peak RSS is the process's: in the whole suite other tests free tens of megabytes at a time while this one
    /// allocates, and then the process's resident size never rises above where it was (every try saw 0 on the
    /// 2-core CI). So the measurement runs in a child: this test binary again, with only this test, and the
    /// child's own figure is what is asserted here.
    @Test func theMemoryMeasurementSeesAnAllocatedHeader() throws {
        if ProcessInfo.processInfo.environment[Self.isolatedKey] == "1" { return try Self.measureAllocatedHeader() }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["--testing-library", "swift-testing", "--filter", "MemoryBoundTests/theMemoryMeasurementSeesAnAllocatedHeader"]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.isolatedKey: "1"]) { $1 }
        let pipe = Pipe()
        child.standardOutput = pipe
        child.standardError = pipe
        try child.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        #expect(child.terminationStatus == 0, "\(output)")
        let figure = output.split(separator: "\n").first { $0.contains("grew peak RSS by") }
        let growth = figure.flatMap { line in line.split(separator: " ").dropLast().last.flatMap { Int($0) } }
        print(figure.map(String.init) ?? output)
        #expect((growth ?? 0) > 40 << 20, "the isolated measurement: \(output)")
    }

    static let isolatedKey = "FLEETADAPT_ISOLATED_MEMORY_MEASUREMENT"

    /// The measurement itself, in a process that runs nothing else.
    static func measureAllocatedHeader() throws {
        var bytes = try Fixtures.bytes("baseline.jpg")
        let sof = try #require((0..<bytes.count - 1).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        bytes.replaceSubrange(sof + 5..<sof + 9, with: [0x0F, 0xA0, 0x0F, 0xA0])   // height, width = 4000
        #expect(try ImageDecoder.header(bytes, source: "x") == ImageHeader(format: .jpeg, width: 4000, height: 4000, channels: 3))
        try Fixtures.resetPeak()
        let before = try Fixtures.status("VmRSS")
        do { _ = try ImageDecoder.decode(bytes, source: "tall.jpg"); Issue.record("decoded") } catch let e as ImageError {
            #expect(e.kind == .corrupt && e.source == "tall.jpg", "\(e)")
        }
        let growth = try Fixtures.status("VmHWM") - before
        print("decoding a 4000x4000 header over a 31x23 image grew peak RSS by \(growth) bytes")
        #expect(growth > 40 << 20, "peak RSS grew by only \(growth) bytes")
    }
}
