import Foundation
import HTTPServer
import Synchronization

/// A real HTTP server on loopback (the project's libmicrohttpd face) serving canned routes, recording every
/// request it saw with the time it arrived, so tests can check what the client sent and how often.
final class CannedServer: Sendable {
    struct Seen: Sendable {
        var method: String
        var path: String
        var query: [String: String]
        var headers: [String: String]
        var body: [UInt8]
        var at: ContinuousClock.Instant
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let server: HTTPServer
    let recorder: Recorder

    /// - Parameter port: 0 for any free port.
    init(port: Int = 0, _ routes: (Router, CannedServer.Recorder) -> Void) throws {
        let router = Router()
        let recorder = Recorder(log: Recorder.Log())
        routes(router, recorder)
        server = HTTPServer(configuration: HTTPServerConfiguration(port: port, threadPoolSize: 2, accessLog: nil), router: router)
        self.recorder = recorder
        try server.start()
    }

    var port: Int { server.boundPort }
    var baseURL: String { "http://127.0.0.1:\(port)" }
    var seen: [Seen] { recorder.log.entries }
    func shutdown() { server.shutdown(gracePeriod: .seconds(2)) }

    /// Handed to the routes: each handler records its request first.
    struct Recorder: Sendable {
        final class Log: Sendable {
            private let state = Mutex<[Seen]>([])
            func append(_ s: Seen) { state.withLock { $0.append(s) } }
            var entries: [Seen] { state.withLock { $0 } }
        }
        let log: Log

        /// Records the request and returns how many requests this route had seen before it.
        @discardableResult
        func record(_ request: HTTPRequest) -> Int {
            var headers: [String: String] = [:]
            for (name, value) in request.headers { headers[name.lowercased()] = value }
            let before = log.entries.filter { $0.method == request.method.rawValue && $0.path == request.path }.count
            log.append(Seen(method: request.method.rawValue, path: request.path, query: request.query, headers: headers,
                            body: (try? request.bodyBytes()) ?? request.body, at: .now))
            return before
        }
    }
}

/// A loopback port that nothing listens on (taken from a server that has just shut down).
func closedPort() throws -> Int {
    let s = try CannedServer { _, _ in }
    let port = s.port
    s.shutdown()
    return port
}
