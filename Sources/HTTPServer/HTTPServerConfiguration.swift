import Foundation

public struct HTTPServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port; read it back from `HTTPServer.boundPort`.
    public var port: Int = 8080
    /// Worker threads, each with its own epoll loop; handlers may block (database calls), so more than cores.
    public var threadPoolSize: Int = 8
    public var defaultBodyLimit: Int = 1 << 20
    public var connectionTimeoutSeconds: Int = 120
    public var spoolDirectory: String = NSTemporaryDirectory()
    /// One line per request; nil turns the access log off.
    public var accessLog: (@Sendable (String) -> Void)? = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    public init() {}
}
