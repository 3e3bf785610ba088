import FleetClient
import Foundation
import HTTPServer
import Synchronization
import Testing
import TestSupport

/// HTTPS end to end on loopback: the server (libmicrohttpd over GnuTLS) with certificates made at test time by
/// openssl, the client (libcurl) verifying them against a private CA; a wrong CA, a wrong name and plain HTTP are
/// refused; a reload serves a new certificate to new connections while a request in flight on the old one
/// finishes; a bad file on reload leaves the old certificate serving.
@Suite(.serialized) struct TLSTests {
    /// A TLS server whose `/hello` answers its name and `/slow` answers after `slowSeconds`.
    static func server(_ pki: TestPKI, certificate: String, slowSeconds: Double = 0) throws -> HTTPServer {
        let router = Router()
        router.add(.GET, "/hello") { _ in HTTPResponse(status: 200, body: Array("hello over TLS".utf8)) }
        router.add(.GET, "/slow") { _ in
            Thread.sleep(forTimeInterval: slowSeconds)
            return HTTPResponse(status: 200, body: Array("slow".utf8))
        }
        var configuration = HTTPServerConfiguration(port: 0, threadPoolSize: 2, accessLog: nil)
        configuration.tls = TLSConfiguration(certificateFile: pki.path(certificate + ".pem"), keyFile: pki.path(certificate + ".key"))
        configuration.tlsDrainSeconds = 20
        let server = HTTPServer(configuration: configuration, router: router)
        try server.start()
        return server
    }

    /// The subject the server at `port` presents to a new connection, as openssl's client sees it.
    static func presentedSubject(port: Int) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("subject=") }) else {
            throw TestPKI.Failure("no subject in openssl s_client's output")
        }
        return String(line)
    }

    @Test func clientTrustingThePrivateCAGetsTheAnswer() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeServer("server", commonName: "localhost")
        let server = try Self.server(pki, certificate: "server")
        defer { server.shutdown(gracePeriod: .seconds(2)) }
        for host in ["127.0.0.1", "localhost"] {
            let client = CoordinatorClient(baseURL: "https://\(host):\(server.boundPort)", token: "t",
                                           tls: ClientTLS(caFile: pki.path("ca.pem")))
            let r = try client.send("GET", "/hello", attempts: 1)
            #expect(r.status == 200)
            #expect(String(decoding: r.body, as: UTF8.self) == "hello over TLS")
        }
    }

    @Test func wrongCAWrongNameAndPlainHTTPAreRefused() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeCA("other")
        try pki.makeServer("server", commonName: "localhost")
        try pki.makeServer("elsewhere", commonName: "coordinator.example", altNames: "DNS:coordinator.example")
        let server = try Self.server(pki, certificate: "server")
        defer { server.shutdown(gracePeriod: .seconds(2)) }
        let base = "https://127.0.0.1:\(server.boundPort)"

        // A CA that did not sign the server's certificate: refused at once, not retried.
        let started = ContinuousClock.now
        let wrongCA = CoordinatorClient(baseURL: base, token: "t", tls: ClientTLS(caFile: pki.path("other.pem")))
        #expect(throws: CoordinatorClient.Failure.self) { try wrongCA.send("GET", "/hello", attempts: 8) }
        #expect(ContinuousClock.now - started < .seconds(5), "a verification failure is not worth a retry")
        do {
            _ = try wrongCA.send("GET", "/hello", attempts: 1)
        } catch let failure as CoordinatorClient.Failure {
            #expect(failure.description.lowercased().contains("certificate"), "\(failure)")
        }
        // The system's CAs do not know the private one either.
        #expect(throws: CoordinatorClient.Failure.self) {
            try CoordinatorClient(baseURL: base, token: "t").send("GET", "/hello", attempts: 1)
        }
        // A certificate for another name, signed by the trusted CA.
        let other = try Self.server(pki, certificate: "elsewhere")
        defer { other.shutdown(gracePeriod: .seconds(2)) }
        let wrongName = CoordinatorClient(baseURL: "https://127.0.0.1:\(other.boundPort)", token: "t",
                                          tls: ClientTLS(caFile: pki.path("ca.pem")))
        #expect(throws: CoordinatorClient.Failure.self) { try wrongName.send("GET", "/hello", attempts: 1) }
        // Plain HTTP to the TLS port gets no answer.
        #expect(throws: CoordinatorClient.Failure.self) {
            try CoordinatorClient(baseURL: "http://127.0.0.1:\(server.boundPort)", token: "t").send("GET", "/hello", attempts: 1)
        }
        // An unreadable CA file is an error, not a fallback to the system's CAs.
        let missingCA = CoordinatorClient(baseURL: base, token: "t", tls: ClientTLS(caFile: pki.path("missing.pem")))
        #expect(throws: CoordinatorClient.Failure.self) { try missingCA.send("GET", "/hello", attempts: 1) }
    }

    @Test func reloadServesTheNewCertificateWithoutDroppingARequestInFlight() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeServer("first", commonName: "first.localhost")
        try pki.makeServer("second", commonName: "second.localhost")
        // The server reads whatever the configured files hold at start and at each reload.
        try FileManager.default.copyItem(atPath: pki.path("first.pem"), toPath: pki.path("live.pem"))
        try FileManager.default.copyItem(atPath: pki.path("first.key"), toPath: pki.path("live.key"))
        let server = try Self.server(pki, certificate: "live", slowSeconds: 2)
        defer { server.shutdown(gracePeriod: .seconds(2)) }
        let client = CoordinatorClient(baseURL: "https://127.0.0.1:\(server.boundPort)", token: "t",
                                       tls: ClientTLS(caFile: pki.path("ca.pem")))
        #expect(try Self.presentedSubject(port: server.boundPort).contains("first.localhost"))

        // A request on the old certificate is in flight while the certificate is renewed.
        let slow = Mutex<Result<Int, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let status = (try? client.send("GET", "/slow", attempts: 1))?.status ?? -1
            slow.withLock { $0 = .success(status) }
            done.signal()
        }
        Thread.sleep(forTimeInterval: 0.5)
        for suffix in ["pem", "key"] {
            try FileManager.default.removeItem(atPath: pki.path("live.\(suffix)"))
            try FileManager.default.copyItem(atPath: pki.path("second.\(suffix)"), toPath: pki.path("live.\(suffix)"))
        }
        try server.reloadTLS()
        #expect(try Self.presentedSubject(port: server.boundPort).contains("second.localhost"))
        #expect(try client.send("GET", "/hello", attempts: 1).status == 200)
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(try slow.withLock { try $0?.get() } == 200, "the request in flight on the old certificate finished")

        // A file that does not load keeps the running certificate.
        try "not a key".write(toFile: pki.path("live.key"), atomically: true, encoding: .utf8)
        #expect(throws: TLSConfigurationError.self) { try server.reloadTLS() }
        #expect(try Self.presentedSubject(port: server.boundPort).contains("second.localhost"))
        #expect(try client.send("GET", "/hello", attempts: 1).status == 200)
        // A key that parses but belongs to another certificate: GnuTLS refuses the pair, the old one stays.
        try FileManager.default.removeItem(atPath: pki.path("live.key"))
        try FileManager.default.copyItem(atPath: pki.path("first.key"), toPath: pki.path("live.key"))
        #expect(throws: TLSConfigurationError.rejected) { try server.reloadTLS() }
        #expect(try client.send("GET", "/hello", attempts: 1).status == 200)
        #expect(try Self.presentedSubject(port: server.boundPort).contains("second.localhost"))
    }

    @Test func serverRefusesToStartOnFilesThatAreNotACertificate() throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        try pki.makeServer("server", commonName: "localhost")
        try "garbage".write(toFile: pki.path("bad.pem"), atomically: true, encoding: .utf8)
        var configuration = HTTPServerConfiguration(port: 0, threadPoolSize: 1, accessLog: nil)
        configuration.tls = TLSConfiguration(certificateFile: pki.path("bad.pem"), keyFile: pki.path("server.key"))
        #expect(throws: TLSConfigurationError.self) { try HTTPServer(configuration: configuration, router: Router()).start() }
        configuration.tls = TLSConfiguration(certificateFile: pki.path("server.pem"), keyFile: pki.path("absent.key"))
        #expect(throws: TLSConfigurationError.self) { try HTTPServer(configuration: configuration, router: Router()).start() }
        // PEM, but the key of another certificate: GnuTLS refuses the pair before any socket is opened.
        try pki.makeServer("other", commonName: "localhost")
        configuration.tls = TLSConfiguration(certificateFile: pki.path("server.pem"), keyFile: pki.path("other.key"))
        #expect(throws: TLSConfigurationError.rejected) { try HTTPServer(configuration: configuration, router: Router()).start() }
    }
}
