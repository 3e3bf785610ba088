@testable import HTTPServer

/// Starts a real server on an ephemeral loopback port for the duration of `body`.
func withServer<T>(_ router: Router, configure: (inout HTTPServerConfiguration) -> Void = { _ in },
                   _ body: (HTTPServer, Int) throws -> T) throws -> T {
    var configuration = HTTPServerConfiguration(port: 0, threadPoolSize: 2, accessLog: nil)
    configure(&configuration)
    let server = HTTPServer(configuration: configuration, router: router)
    try server.start()
    defer { server.shutdown(gracePeriod: .seconds(2)) }
    return try body(server, server.boundPort)
}

