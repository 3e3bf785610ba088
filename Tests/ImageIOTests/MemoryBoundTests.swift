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
    @Test func theMemoryMeasurementSeesAnAllocatedHeader() throws {
        var bytes = try Fixtures.bytes("baseline.jpg")
        let sof = try #require((0..<bytes.count - 1).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        bytes.replaceSubrange(sof + 5..<sof + 9, with: [0x0F, 0xA0, 0x0F, 0xA0])   // height, width = 4000
        #expect(try ImageDecoder.header(bytes, source: "x") == ImageHeader(format: .jpeg, width: 4000, height: 4000, channels: 3))
        // Most growth of several tries counts: another suite in this process may free a larger buffer while the
        // header's is allocated, so that the process's resident size never rises above where it was. Tries are
        // spaced out (and stop at the first that sees the buffer) so one burst of other suites cannot hide them all.
        var growth = Int.min
        for attempt in 0..<20 where growth <= 40 << 20 {
            if attempt > 0 { Thread.sleep(forTimeInterval: 0.2) }
            try Fixtures.resetPeak()
            let before = try Fixtures.status("VmRSS")
            do { _ = try ImageDecoder.decode(bytes, source: "tall.jpg"); Issue.record("decoded") } catch let e as ImageError {
                #expect(e.kind == .corrupt && e.source == "tall.jpg", "\(e)")
            }
            growth = max(growth, try Fixtures.status("VmHWM") - before)
        }
        print("decoding a 4000x4000 header over a 31x23 image grew peak RSS by \(growth) bytes")
        #expect(growth > 40 << 20, "peak RSS grew by only \(growth) bytes")
    }
}
