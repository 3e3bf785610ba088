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
    return Unmanaged.passRetained(state).toOpaque()
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
    core.completed(state)
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
