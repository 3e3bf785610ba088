internal import CMicroHTTPD
import Foundation

// C entry points for MHD. They are top-level `@convention(c)` functions with no captures; context arrives as
// `void *` and is turned back into Swift objects through `Unmanaged`.
//
// Retain/release rule:
// * daemon `cls` = `Unmanaged.passUnretained(ServerCore)`: `HTTPServer.Daemon` owns the core and calls
//   `MHD_stop_daemon` before it releases it, so the core outlives every callback.
// * `*con_cls` = `Unmanaged.passRetained(ConnectionState)` made in `uriLogged` (+1). MHD sets `client_aware` before
//   calling the URI logger, so `requestCompleted` runs for every such request and balances it with
//   `takeRetainedValue()` (-1), clearing `*con_cls`. Nothing else releases it.

func uriLogged(_ cls: UnsafeMutableRawPointer?, _ uri: UnsafePointer<CChar>?,
               _ connection: OpaquePointer?) -> UnsafeMutableRawPointer? {
    guard let cls else { return nil }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    core.inFlight.add(1, ordering: .sequentiallyConsistent)
    let state = ConnectionState(target: uri.map { String(cString: $0) } ?? "", started: .now)
    if let uri, core.targetIsOversized(state.target) {
        state.error = core.oversizedTargetError()
        // MHD parses the query into its per-connection memory pool right after this callback, and with too many
        // parameters it runs out of pool and stalls until the idle timeout instead of answering. Ending the
        // string just after the `?` (the buffer is MHD's own read buffer, writable) leaves it nothing to parse;
        // the request is answered 414 from `state.error`.
        if let mark = strchr(uri, Int32(UInt8(ascii: "?"))) {
            UnsafeMutablePointer(mutating: mark + 1).pointee = 0
        }
    }
    return Unmanaged.passRetained(state).toOpaque()
}

/// Connection started / closed (`MHD_OPTION_NOTIFY_CONNECTION`): registers the socket with the deadline sweep.
/// MHD calls the closed notification before it closes the socket.
func connectionNotified(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                        _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                        _ code: MHD_ConnectionNotificationCode) {
    guard let cls, let connection else { return }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    let key = ServerCore.key(connection)
    if code == .CONNECTION_NOTIFY_STARTED {
        core.connections.started(key, fd: fleetadapt_mhd_connection_fd(connection),
                                 address: ConnectionTracker.format(fleetadapt_mhd_client_address(connection)),
                                 deadline: .now + .seconds(core.configuration.limits.headerDeadlineSeconds))
    } else {
        core.connections.closed(key)
    }
}

func accessHandler(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                   _ url: UnsafePointer<CChar>?, _ method: UnsafePointer<CChar>?,
                   _ version: UnsafePointer<CChar>?, _ uploadData: UnsafePointer<CChar>?,
                   _ uploadDataSize: UnsafeMutablePointer<Int>?,
                   _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> MHD_Result {
    guard let cls, let connection, let uploadDataSize, let raw = conCls?.pointee else { return .NO }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    let state = Unmanaged<ConnectionState>.fromOpaque(raw).takeUnretainedValue()
    return core.handle(connection, state, method: method, upload: uploadData, uploadSize: uploadDataSize)
}

func requestCompleted(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                      _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                      _ code: MHD_RequestTerminationCode) {
    guard let cls, let conCls, let raw = conCls.pointee else { return }
    conCls.pointee = nil
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    let state = Unmanaged<ConnectionState>.fromOpaque(raw).takeRetainedValue()
    core.completed(state, connection: connection, cleanly: code == .REQUEST_TERMINATED_COMPLETED_OK)
}

/// Leaves URIs escaped: we parse the raw target ourselves and must see `%2F` inside a segment as data.
func keepEscaped(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                 _ s: UnsafeMutablePointer<CChar>?) -> Int {
    guard let s else { return 0 }
    return strlen(s)
}

/// Copies one request header into the `HTTPHeaders` that `cls` points to (valid for the duration of the call).
func collectHeader(_ cls: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind, _ key: UnsafePointer<CChar>?,
                   _ value: UnsafePointer<CChar>?) -> MHD_Result {
    guard let cls, let key else { return .YES }
    let headers = cls.assumingMemoryBound(to: HTTPHeaders.self)
    headers.pointee.add(String(cString: key), value.map { String(cString: $0) } ?? "")
    return .YES
}

/// The access handler of the daemon that only tries TLS credentials (`HTTPServer.accepted`): it listens nowhere,
/// so this never runs; were it called, it would close the connection.
func refuseEverything(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                      _ url: UnsafePointer<CChar>?, _ method: UnsafePointer<CChar>?,
                      _ version: UnsafePointer<CChar>?, _ uploadData: UnsafePointer<CChar>?,
                      _ uploadDataSize: UnsafeMutablePointer<Int>?,
                      _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> MHD_Result {
    .NO
}
