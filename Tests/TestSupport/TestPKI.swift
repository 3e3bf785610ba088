import Foundation

/// A private CA and server certificates it signed, made with openssl in a fresh directory (TLS tests).
public struct TestPKI {
    public let directory: String

    public init() throws {
        directory = NSTemporaryDirectory() + "fleetadapt-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeCA("ca")
    }

    public func path(_ name: String) -> String { directory + "/" + name }

    public func makeCA(_ name: String) throws {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("\(name).key"), "-out", path("\(name).pem"), "-days", "2",
                     "-subj", "/CN=FleetAdapt test CA \(name)"])
    }

    /// A server certificate signed by `ca` for the given subjectAltName, named `name`.
    public func makeServer(_ name: String, commonName: String, altNames: String = "DNS:localhost,IP:127.0.0.1",
                           ca: String = "ca") throws {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(commonName)"])
        try "subjectAltName=\(altNames)\n".write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
                     "-CAcreateserial", "-out", path("\(name).pem"), "-days", "2", "-extfile", path("\(name).ext")])
    }

    func openssl(_ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw Failure("openssl \(arguments[0]) exited \(p.terminationStatus)") }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: directory) }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }
}
