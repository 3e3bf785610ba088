@testable import Agent
import Foundation
import Testing

@Suite struct DeviceFactsTests {
    @Test func freeMemoryIsMemAvailableInMiB() {
        let meminfo = "MemTotal:       16384000 kB\nMemFree:         1024000 kB\nMemAvailable:    8192000 kB\nBuffers:  1 kB\n"
        #expect(DeviceFacts.memAvailableMB(meminfo: meminfo) == 8000)
        #expect(DeviceFacts.memAvailableMB(meminfo: "MemTotal: 1 kB\n") == nil)
        #expect(DeviceFacts.freeMemoryMB(meminfoPath: "/nonexistent/meminfo") == nil)
        // This machine's own (the tests run on Linux, as the agent does).
        #expect((DeviceFacts.freeMemoryMB() ?? 0) > 0)
    }
}
